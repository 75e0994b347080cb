# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The audit_report module's options, as Ansible's argument spec.

Why it exists: audit_report is an action plugin (plugins/action/audit_report.py) that writes the
fleet audit's report on the controller; plugins/modules/audit_report.py holds its documentation.
Both read this one spec: the action plugin validates each task with it, and ansible-test's
validate-modules checks the documentation against it. Plain Python, importable anywhere.
"""

from __future__ import annotations

AUDIT_REPORT_SPEC = dict(
    dest=dict(type='path', required=True),
    hosts=dict(type='list', elements='str'),
    result_var=dict(type='str', default='ufw_docker_audit_result'),
    results=dict(type='dict'),
)

# results, when given, replaces what result_var would read.
AUDIT_REPORT_MUTUALLY_EXCLUSIVE = [['results', 'result_var']]
