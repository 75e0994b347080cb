# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE at the repository root)
"""A bench-only action: returns, for the host it runs for, the result the ufw_docker module
would have returned in the audit, read from the JSON file named by BENCH_AUDIT_RESULTS (host
name -> result; a result with ``failed`` or ``unreachable`` is returned as such). Ansible then
handles it as it handles the module's own result (registered, failures and unreachable hosts
ignored as the audit's task ignores them), without a host to run on. Used by bench/audit.py."""

from __future__ import annotations

import json
import os

from ansible.plugins.action import ActionBase

_RESULTS = {}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        path = os.environ['BENCH_AUDIT_RESULTS']
        if path not in _RESULTS:
            with open(path, encoding='utf-8') as f:
                _RESULTS[path] = json.load(f)
        result = super().run(tmp, task_vars)
        result.update(json.loads(json.dumps(_RESULTS[path][task_vars['inventory_hostname']])))
        return result
