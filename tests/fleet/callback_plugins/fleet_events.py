# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE at the repository root)
"""A test-only callback: every play, task and host result of a run, one JSON object a line.

Why it exists: the fleet and unit tests check what each host's tasks returned (a module's msg,
its diff, whether a failure was ignored, which hosts ran in which batch, the exposure table).
Read from the human output, that meant regular expressions over text made for people; this
writes the results themselves, as Ansible holds them, to the file named by FLEET_EVENTS (the
human output on stdout is unchanged). tests/fleet/events.py reads it.

Enable it with ANSIBLE_CALLBACK_PLUGINS=tests/fleet/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=fleet_events (and ANSIBLE_LOAD_CALLBACK_PLUGINS=1 for ad-hoc runs).
Events:
  {"event": "play", "name": ...}
  {"event": "task", "name": ..., "n": N}   N counts task starts in the run (a batch of a
                                            `serial` play starts its tasks again)
  {"event": "result", "task": ..., "n": N, "host": ..., "status": "ok" | "changed" |
   "failed" | "unreachable" | "skipped", "ignored": bool, "result": {...}}
  {"event": "no_hosts_remaining"}
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fleet_events
type: aggregate
short_description: the run's results as JSON lines, for the project's tests
description:
  - Writes every play, task and host result to the file named by the FLEET_EVENTS environment
    variable, one JSON object a line.
requirements:
  - FLEET_EVENTS set to a writable path
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'fleet_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ['FLEET_EVENTS'], 'a', encoding='utf-8')
        self._task = None
        self._n = 0

    def _write(self, **event):
        self._out.write(json.dumps(event, default=str, sort_keys=True) + '\n')
        self._out.flush()

    def v2_playbook_on_play_start(self, play):
        self._write(event='play', name=play.get_name())

    def _task_start(self, task):
        self._n += 1
        self._task = task.get_name()
        self._write(event='task', name=self._task, n=self._n)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task)

    def _result(self, result, status, ignored=False):
        data = dict(result._result)
        if status == 'ok' and data.get('changed'):
            status = 'changed'
        self._write(event='result', task=self._task or result._task.get_name(), n=self._n,
                    host=result._host.get_name(), status=status, ignored=ignored, result=data)

    def v2_runner_on_ok(self, result):
        self._result(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, 'failed', ignored=bool(ignore_errors))

    def v2_runner_on_unreachable(self, result):
        self._result(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._result(result, 'skipped')

    def v2_playbook_on_no_hosts_remaining(self):
        self._write(event='no_hosts_remaining')
