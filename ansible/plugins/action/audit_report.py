# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Writes the fleet exposure audit's report (report.json, report.html, report.md) on the
controller, from every host's ufw_docker check-mode result.

Why it exists: the audit playbook (playbooks/audit.yml) collects one result per host; the report
must be built once, after every host answered, on the machine the operator runs Ansible on. An
action plugin runs there, whatever host its task is for, and never connects to a host (this one
makes no remote call at all). The report itself is plugins/plugin_utils/audit_report.py's: this
file validates the task's options (plugins/module_utils/audit_report_spec.py), hands the results
over, writes the files (not in check mode) and returns their paths and the fleet's totals.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.ufw_docker.ufw_docker.plugins.module_utils.audit_report_spec import AUDIT_REPORT_SPEC
from ansible_collections.ufw_docker.ufw_docker.plugins.plugin_utils import audit_report


class ActionModule(ActionBase):
    """Builds the audit report from the task's results and writes it on the controller."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        # Raises AnsibleActionFail with Ansible's own message for a wrong option or type.
        args = self.validate_argument_spec(argument_spec=AUDIT_REPORT_SPEC)[1]
        report = audit_report.build_report(args['results'], hosts=args.get('hosts'))
        dest = args['dest']
        if self._task.check_mode:
            files = audit_report.report_paths(dest)
            result.update(changed=True, files=files, totals=report['totals'], msg=(
                'check mode: would write the audit of %d hosts into %s'
                % (report['totals']['hosts'], audit_report.report_dir(dest))))
            return result
        try:
            files = audit_report.write_report(report, dest)
        except OSError as e:
            result.update(failed=True, msg=(
                'audit_report: cannot write the report into %s: %s; set ufw_docker_audit_dir '
                '(dest) to a directory you can write' % (audit_report.report_dir(dest), e)))
            return result
        result.update(changed=True, files=files, totals=report['totals'], msg=(
            'wrote the audit of %d hosts (%d failed, %d unreachable) into %s'
            % (report['totals']['hosts'], report['totals']['hosts_failed'],
               report['totals']['hosts_unreachable'], audit_report.report_dir(dest))))
        return result


def main():
    """Validates a task's arguments as a Python module's AnsibleModule would, and nothing else:
    for ansible-lint's ``args`` rule, which calls an action plugin's main() with AnsibleModule
    patched (see plugins/action/ufw_docker.py's main())."""
    from ansible.module_utils.basic import AnsibleModule  # looked up now: the linter patches it

    AnsibleModule(argument_spec=AUDIT_REPORT_SPEC, supports_check_mode=True)
