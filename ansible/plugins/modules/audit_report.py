#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The audit_report module's documentation and argument spec, for Ansible's tools.

Why it exists: audit_report runs on the controller only, as the action plugin
plugins/action/audit_report.py; Ansible's tools (ansible-doc, Galaxy, ansible-test, ansible-lint)
know modules by their Python file, which is this one. main() never writes a report: run as a
module on a host (the action plugin bypassed), it fails with a message saying so.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_report
short_description: Write the fleet exposure audit's report on the controller
version_added: 0.1.0
description:
  - Turns the results of the ufw_docker module run in check mode on every host of a play (the
    C(ufw_docker.ufw_docker.audit) playbook) into one report of what the internet reaches on
    every host, now and after the role's policy, written into O(dest) on the controller.
  - C(report.json) holds every host with its C(status) (V(ok), V(failed) or V(unreachable)),
    C(msg), C(in_sync), C(docker_firewall_backend), and the module's C(published),
    C(unrecognised_dnat) and C(warnings), plus the fleet's totals. Its schema is in the
    collection's README ("The audit report").
  - C(report.html) is one self-contained page (no external script, font, style or image; its
    Content-Security-Policy lets it load nothing) with the fleet's totals, where exposure sits
    (every published port by who reaches it, now and after; per host), the hosts that failed or
    were unreachable with their reasons, and a sortable, filterable table of every published
    port per host and family, now and after.
  - C(report.md) has the totals and the tables, for a ticket or a pull request.
  - A host that failed, was unreachable or left no result is in every report with its reason,
    never dropped; its exposure is reported as unknown.
  - Runs on the controller only, whatever host the task runs for; it never connects to a host.
    Each file is written atomically (a temporary file in O(dest), renamed).
author:
  - ufw-docker contributors (!UNKNOWN)
options:
  dest:
    description:
      - The directory the report files are written into, on the controller; made when missing.
      - A relative path is relative to the directory ansible-playbook runs in.
    type: path
    required: true
  hosts:
    description:
      - The hosts of the report, in its order.
      - A host listed here without a result is reported as failed (its audit task never ran).
      - Not set, the play's hosts (C(ansible_play_hosts_all)), or with O(results) the hosts of
        O(results) in its order.
    type: list
    elements: str
  result_var:
    description:
      - The variable each host keeps its result in, read from that host's variables
        (C(hostvars)), which holds the result its C(ufw_docker.ufw_docker.ufw_docker) task registered in
        check mode, with C(ignore_errors) and C(ignore_unreachable) so that every host has one.
      - The role's C(audit) entry point registers C(ufw_docker_audit_result).
    type: str
    default: ufw_docker_audit_result
  results:
    description:
      - Each host's name, mapped to its result (or to null when there is none), instead of
        reading O(result_var) from each host's variables.
      - For results gathered some other way; the audit playbook lets the plugin read them.
    type: dict
notes:
  - The report is rendered once, on the controller; 1000 hosts with 20 published ports each
    render in under 2 seconds (C(bench/audit.py) in the project's source).
  - In check mode the report is built (its totals are returned) but no file is written; the
    audit playbook runs this task with C(check_mode=false), so that C(--check) still writes it.
attributes:
  check_mode:
    support: full
    description: Builds the report and returns its totals without writing the files.
  diff_mode:
    support: none
    description: No diff; the files are new each run (they carry the time they were generated).
  platform:
    support: full
    platforms: posix
    description: The controller (Linux, macOS).
seealso:
  - module: ufw_docker.ufw_docker.ufw_docker
"""

EXAMPLES = r"""
# What the ufw_docker.ufw_docker.audit playbook does after every host answered: each host's
# ufw_docker_audit_result, for every host of the play.
- name: Write the fleet's exposure report on the controller.
  ufw_docker.ufw_docker.audit_report:
    dest: ./ufw-docker-audit
  run_once: true
  delegate_to: localhost
  check_mode: false

# Results gathered some other way.
- name: Write a report of two hosts' results.
  ufw_docker.ufw_docker.audit_report:
    dest: /srv/audit/today
    results:
      web1: "{{ web1_result }}"
      web2: "{{ web2_result }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: The paths of the report files (written, or that would be in check mode).
  returned: always
  type: dict
  contains:
    json:
      description: report.json.
      type: str
      returned: always
    html:
      description: report.html.
      type: str
      returned: always
    markdown:
      description: report.md.
      type: str
      returned: always
  sample:
    json: /home/ops/ufw-docker-audit/report.json
    html: /home/ops/ufw-docker-audit/report.html
    markdown: /home/ops/ufw-docker-audit/report.md
totals:
  description:
    - The fleet's totals, as in report.json (see the collection's README for every key).
    - C(published) counts rows, one per host, family, protocol, address and port; C(now) and
      C(after) count those rows by who on the internet reaches them (V(open),
      V(restricted), V(blocked), V(unknown)).
  returned: always
  type: dict
  sample:
    hosts: 6
    hosts_ok: 4
    hosts_failed: 1
    hosts_unreachable: 1
    hosts_in_sync: 1
    hosts_drifted: 3
    hosts_open_now: 1
    hosts_open_after: 1
    published: 8
    now: {open: 8, restricted: 0, blocked: 0, unknown: 0}
    after: {open: 4, restricted: 2, blocked: 2, unknown: 0}
    changing: 4
    opened: 0
    closed: 4
    unrecognised_dnat: 0
    warnings: 2
    docker_firewall_backend: {iptables: 1, none: 3, unknown: 2}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ufw_docker.ufw_docker.plugins.module_utils.audit_report_spec import (
    AUDIT_REPORT_MUTUALLY_EXCLUSIVE, AUDIT_REPORT_SPEC)


def main():
    module = AnsibleModule(argument_spec=AUDIT_REPORT_SPEC, mutually_exclusive=AUDIT_REPORT_MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    module.fail_json(msg=(
        'audit_report runs on the controller through its action plugin '
        '(ufw_docker.ufw_docker.audit_report); this Python file holds only its documentation '
        'and argument spec. Call the module by its full name from the collection.'))


if __name__ == '__main__':
    main()
