# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Unit tests of the audit_report action plugin (plugins/action/audit_report.py): it reads each
host's result from the hostvars every task sees (the audit playbook's way), or takes the results
given; a host without a result is in the report as failed; check mode writes nothing; a wrong
option fails with Ansible's message. Run by scripts/units.sh (ansible-test units, offline)."""

from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible_collections.ufw_docker.ufw_docker.plugins.action.audit_report import ActionModule


def action(args, check_mode=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'ufw_docker.ufw_docker.audit_report'
    play_context = MagicMock()
    play_context.check_mode = check_mode
    connection = MagicMock()
    plugin = ActionModule(task, connection, play_context, loader=None, templar=None, shared_loader_obj=None)
    # Set by the plugin loader in a real run; ansible-core 2.15 names the plugin with it in the
    # message of an unsupported option.
    plugin._load_name = 'ufw_docker.ufw_docker.audit_report'
    return plugin


def ok(published=()):
    return dict(changed=False, msg='in sync', published=list(published), unrecognised_dnat=[],
                warnings=[], docker_firewall_backend='iptables')


PORT = dict(family='ipv4', proto='tcp', host_port='8080', container_address='192.0.2.2',
            container_port='80', bridge='docker0', mode='host', now='open', after='blocked',
            sources=[], trusted=[])


def task_vars():
    return {
        'ansible_play_hosts_all': ['web', 'down', 'never'],
        'hostvars': {
            'web': {'ufw_docker_audit_result': ok([PORT]), 'inventory_hostname': 'web'},
            'down': {'ufw_docker_audit_result': dict(unreachable=True, msg='Connection refused')},
            'never': {'inventory_hostname': 'never'},
        },
    }


def read(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def test_the_play_hosts_results_are_read_from_hostvars(tmp_path):
    result = action(dict(dest=str(tmp_path))).run(task_vars=task_vars())
    assert result['changed'] is True and not result.get('failed')
    assert sorted(os.listdir(str(tmp_path))) == ['report.html', 'report.json', 'report.md']
    report = read(result['files']['json'])
    assert [(h['host'], h['status']) for h in report['hosts']] == [
        ('web', 'ok'), ('down', 'unreachable'), ('never', 'failed')]
    assert report['hosts'][0]['published'] == [PORT]
    assert result['totals'] == report['totals'] and result['totals']['published'] == 1
    assert 'wrote the audit of 3 hosts (1 failed, 1 unreachable)' in result['msg']


def test_hosts_and_result_var_choose_what_is_read(tmp_path):
    variables = task_vars()
    variables['hostvars']['web']['other'] = ok()
    result = action(dict(dest=str(tmp_path), hosts=['web'], result_var='other')).run(task_vars=variables)
    report = read(result['files']['json'])
    assert [(h['host'], h['status'], h['published']) for h in report['hosts']] == [('web', 'ok', [])]


def test_results_given_are_used_as_they_are(tmp_path):
    result = action(dict(dest=str(tmp_path), results={'a': ok(), 'b': None})).run(task_vars={})
    report = read(result['files']['json'])
    assert [(h['host'], h['status']) for h in report['hosts']] == [('a', 'ok'), ('b', 'failed')]


def test_check_mode_writes_nothing_and_says_what_it_would(tmp_path):
    dest = tmp_path / 'report'
    result = action(dict(dest=str(dest)), check_mode=True).run(task_vars=task_vars())
    assert not dest.exists()
    assert result['changed'] is True and result['files']['html'] == str(dest / 'report.html')
    assert result['totals']['hosts'] == 3 and result['msg'].startswith('check mode: would write')


def test_a_directory_it_cannot_write_fails_the_task_with_the_reason(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    result = action(dict(dest=str(blocker / 'report'))).run(task_vars=task_vars())
    assert result['failed'] is True and 'cannot write the report into' in result['msg']


@pytest.mark.parametrize('args', [
    dict(results={'a': {}}),
    dict(dest='/tmp/x', results={'a': {}}, result_var='x'),
    dict(dest='/tmp/x', hosts='not-a-list-of-one', colour='red'),
])
def test_wrong_options_fail_before_anything_is_written(args):
    with pytest.raises(AnsibleActionFail):
        action(args).run(task_vars=task_vars())
