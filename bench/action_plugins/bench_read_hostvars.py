# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE at the repository root)
"""A bench-only action: reads every play host's audit result from hostvars exactly as the
audit_report plugin does (its own _host_results), and nothing else, so that bench/audit.py can
tell Ansible's cost of gathering the results from the report's."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.ufw_docker.ufw_docker.plugins.action.audit_report import ActionModule as Report


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        hosts = list(task_vars['ansible_play_hosts_all'])
        results = Report._host_results(task_vars, hosts, 'ufw_docker_audit_result')
        result.update(changed=False, hosts=len(results), missing=sum(r is None for r in results.values()))
        return result
