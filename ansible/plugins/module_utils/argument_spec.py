# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The ufw_docker module's options, as Ansible's argument spec.

Why it exists: the module is a static binary that validates its own arguments on the host
(src/params.rs), but Ansible's tools need the options in Python. The documentation module
(plugins/modules/ufw_docker.py) and the action plugin (plugins/action/ufw_docker.py) both import
this one spec: ansible-test's validate-modules checks the documentation against it, the action
plugin validates every task's arguments with it on the controller before anything reaches a host,
and ansible-lint's args rule checks a playbook's tasks with it.

The module's options are OPTIONS in src/params.rs (what the binary accepts and defaults to);
scripts/check-options.py fails when this spec's names, types, choices, defaults or sub-options
differ from it (it reads src/options.json, the table's export). Plain Python on purpose: it
imports wherever Ansible imports it (AnsiballZ, ansible-test, ansible-lint), with no data file.
"""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    after_rules=dict(type='path', default='/etc/ufw/after.rules'),
    after6_rules=dict(type='path', default='/etc/ufw/after6.rules'),
    unit_path=dict(type='path', default='/etc/systemd/system/ufw-docker.service'),
    ipv6=dict(type='bool', default=True),
    allow=dict(
        type='list',
        elements='dict',
        default=[],
        options=dict(
            port=dict(type='raw', required=True),
            proto=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
            comment=dict(type='str'),
            **{'from': dict(type='list', elements='str')}
        ),
    ),
    trusted_networks=dict(type='list', elements='str', default=[]),
    ufw_route_rules=dict(type='bool', default=True),
    log=dict(type='bool', default=True),
    log_prefix=dict(type='str', default='[UFW DOCKER BLOCK] '),
    log_limit=dict(type='str', default='3/min'),
    apply=dict(type='str', choices=['live', 'reload', 'none'], default='live'),
    backup=dict(type='bool', default=False),
    validate=dict(type='bool', default=True),
    backend=dict(type='str', choices=['ufw', 'iptables'], default='ufw'),
    docker_host=dict(type='str'),
    policy_file=dict(type='path'),
    command_path=dict(type='path'),
)
