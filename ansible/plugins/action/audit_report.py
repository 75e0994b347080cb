# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Writes the fleet exposure audit's report (report.json, report.html, report.md) on the
controller, from every host's ufw_docker check-mode result.

Why it exists: the audit playbook (playbooks/audit.yml) keeps one result per host; the report
must be built once, after every host answered, on the machine the operator runs Ansible on. An
action plugin runs there, whatever host its task is for, and never connects to a host (this one
makes no remote call at all). The report itself is plugins/plugin_utils/audit_report.py's: this
file validates the task's options (plugins/module_utils/audit_report_spec.py), gathers the
results, writes the files (not in check mode) and returns their paths and the fleet's totals.

The results are read here, from each host's variables (``hostvars[host][result_var]``), rather
than passed in the task's arguments by a Jinja expression over hostvars: for 1000 hosts with 20
published ports each that expression, and Ansible's templating and argument checking of its
20000-entry result, cost about a second more than reading the same variables here
(bench/audit.py). A caller that holds the results some other way passes them as ``results``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.ufw_docker.ufw_docker.plugins.module_utils.audit_report_spec import (
    AUDIT_REPORT_MUTUALLY_EXCLUSIVE, AUDIT_REPORT_SPEC)
from ansible_collections.ufw_docker.ufw_docker.plugins.plugin_utils import audit_report


class ActionModule(ActionBase):
    """Builds the audit report from the task's results and writes it on the controller."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        # Raises AnsibleActionFail with Ansible's own message for a wrong option or type.
        args = self.validate_argument_spec(argument_spec=AUDIT_REPORT_SPEC,
                                           mutually_exclusive=AUDIT_REPORT_MUTUALLY_EXCLUSIVE)[1]
        hosts = args.get('hosts')
        if args.get('results') is not None:
            results = args['results']
        else:
            if hosts is None:
                hosts = list(task_vars.get('ansible_play_hosts_all') or [])
            results = self._host_results(task_vars, hosts, args['result_var'])
        report = audit_report.build_report(results, hosts=hosts)
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

    @staticmethod
    def _host_results(task_vars, hosts, name):
        """Each host's variable NAME, or None where the host has none (its audit task never
        ran), from the hostvars every task sees."""
        hostvars = task_vars.get('hostvars') or {}
        results = {}
        for host in hosts:
            try:
                variables = hostvars[host]
                results[host] = variables[name] if name in variables else None
            except (KeyError, TypeError):
                results[host] = None
        return results


def main():
    """Validates a task's arguments as a Python module's AnsibleModule would, and nothing else:
    for ansible-lint's ``args`` rule, which calls an action plugin's main() with AnsibleModule
    patched (see plugins/action/ufw_docker.py's main())."""
    from ansible.module_utils.basic import AnsibleModule  # looked up now: the linter patches it

    AnsibleModule(argument_spec=AUDIT_REPORT_SPEC, mutually_exclusive=AUDIT_REPORT_MUTUALLY_EXCLUSIVE,
                  supports_check_mode=True)
