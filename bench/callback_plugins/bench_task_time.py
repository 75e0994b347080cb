# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE at the repository root)
"""A bench-only callback: each task's time, from its start to its last host's result, written
as one JSON object {task name: seconds} to the file named by BENCH_TASK_TIMES at the end of the
run. Used by bench/audit.py to time the audit's report task inside ansible-playbook."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_task_time
type: aggregate
short_description: each task's time, for the project's benchmarks
description:
  - Writes {task name, seconds from the task's start to its last result} to BENCH_TASK_TIMES.
requirements:
  - BENCH_TASK_TIMES set to a writable path
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_task_time'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._start = {}
        self._times = {}
        self._name = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._name = task.get_name()
        self._start[self._name] = time.perf_counter()

    def _done(self, result):
        name = result._task.get_name()
        if name in self._start:
            self._times[name] = time.perf_counter() - self._start[name]

    def v2_runner_on_ok(self, result):
        self._done(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result)

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['BENCH_TASK_TIMES'], 'w', encoding='utf-8') as f:
            json.dump(self._times, f)
