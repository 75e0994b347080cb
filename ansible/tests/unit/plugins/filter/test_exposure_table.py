# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Unit tests of the exposure_table filter (plugins/filter/exposure_table.py): the role's table
of a ufw_docker result, line for line as the role has always shown it (the rows the fleet tests
and molecule match), every way Docker's API names a publisher, and a result without a report.
Run by scripts/units.sh (ansible-test units, offline)."""

from __future__ import annotations

from ansible_collections.ufw_docker.ufw_docker.plugins.filter.exposure_table import (
    FilterModule, exposure_table)

HEADER = ('  fam  pro published on                     container                        now        '
          'after this run')


def port(family='ipv4', host_port='8080', now='open', after='blocked', **extra):
    p = dict(family=family, proto='tcp', host_port=host_port,
             container_address='172.17.0.2' if family == 'ipv4' else 'fd00::2',
             container_port='80', bridge='docker0', mode='host', now=now, after=after,
             sources=[], trusted=[])
    p.update(extra)
    return p


def test_one_row_per_port_marked_where_the_run_changes_who_reaches_it():
    lines = exposure_table({'published': [
        port(container='web', host_port='8081'),
        port(container='web', after='open'),
        port('ipv6', container='web', host_port='8081'),
    ]})
    assert lines == [
        HEADER,
        '* ipv4 tcp *:8081                           web                              open       blocked',
        '  ipv4 tcp *:8080                           web                              open       open',
        '* ipv6 tcp *:8081                           web                              open       blocked',
    ]


def test_addresses_restricted_sources_and_every_kind_of_publisher():
    rows = exposure_table({'published': [
        port(host_address='127.0.0.1', now='blocked', after='restricted',
             sources=['198.51.100.0/24', '2001:db8::/32'], container='shop-web-1',
             compose_project='shop', compose_service='web'),
        port('ipv6', host_address='::1', after='blocked', now='blocked'),
        port(swarm_service='edge', mode='ingress'),
        port(swarm_service='api'),
        port(mode='ingress', container_address='10.0.0.5'),
        port(container='x', compose_project='p'),
    ]})[1:]
    assert rows[0] == ('* ipv4 tcp 127.0.0.1:8080                   shop-web-1 (shop/web)            '
                       'blocked    restricted from 198.51.100.0/24,2001:db8::/32')
    assert rows[1].startswith('  ipv6 tcp [::1]:8080 ') and ' [fd00::2]:80 ' in rows[1]
    assert ' edge (swarm ingress) ' in rows[2]
    assert ' api (swarm) ' in rows[3]
    assert ' swarm ingress (10.0.0.5:80) ' in rows[4]
    assert ' x (p/?) ' in rows[5]


def test_nothing_published_foreign_dnat_and_a_failed_result():
    assert exposure_table({'published': []}) == ['no port is published by Docker on this host']
    assert exposure_table({'failed': True, 'msg': 'no'}) == [
        'no port is published by Docker on this host']
    assert exposure_table(None) == ['no port is published by Docker on this host']
    assert exposure_table({'published': [], 'unrecognised_dnat': ['-A X -j DNAT']}) == [
        'no port is published by Docker on this host',
        'published by something other than Docker, not judged: -A X -j DNAT',
    ]


def test_a_name_with_a_line_break_is_split_as_the_table_always_was_never_an_empty_line():
    lines = exposure_table({'published': [port(container='we\nird')]})
    assert len(lines) == 3 and lines[2].startswith('ird ') and '' not in lines


def test_the_filter_is_offered_by_its_name():
    assert FilterModule().filters() == {'exposure_table': exposure_table}
