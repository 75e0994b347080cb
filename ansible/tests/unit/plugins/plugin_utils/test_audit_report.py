# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Unit tests of the fleet audit's report (plugins/plugin_utils/audit_report.py): each host's
result becomes the right entry, the totals count what the entries say, the three renderings
hold every host and row, the page loads nothing and runs nothing but its own script, hostile
text stays text, the files are written atomically, and report.json has exactly the keys the
collection README documents. Run by scripts/units.sh (ansible-test units, offline)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import stat

import pytest

from ansible_collections.ufw_docker.ufw_docker.plugins.plugin_utils import audit_report as ar

README = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'README.md')
WHEN = datetime.datetime(2026, 12, 1, 9, 30, 5, 123456, tzinfo=datetime.timezone.utc)
HOSTILE = '<script>alert("x")</script>|`*_[a](b)'


def port(family='ipv4', proto='tcp', host_port='8080', now='open', after='blocked', **extra):
    p = dict(family=family, proto=proto, host_port=host_port,
             container_address='172.17.0.2' if family == 'ipv4' else 'fd00::2',
             container_port='80', bridge='docker0', mode='host', now=now, after=after,
             sources=[], trusted=[])
    p.update(extra)
    return p


def ok(*ports, changed=True, **extra):
    r = dict(changed=changed, msg='planned', published=list(ports), unrecognised_dnat=[],
             warnings=[], docker_firewall_backend='iptables')
    r.update(extra)
    return r


def fleet():
    """A fleet with every kind of host: drifted with ports, in sync, nothing published, failed
    (after reading the host), failed (before the task), unreachable, and never run."""
    return {
        'web': ok(port(), port(family='ipv6', host_address='2001:db8::1', now='open', after='open'),
                  port(host_port='10', now='blocked', after='restricted',
                       sources=['198.51.100.0/24']),
                  port(proto='udp', host_port='9', now='blocked', after='open'),
                  port(host_port='7', now='unknown', after='blocked'),
                  warnings=['DOCKER-USER is not the first rule of FORWARD (ipv6)'],
                  unrecognised_dnat=['-A PREROUTING -p tcp --dport 2222 -j DNAT --to-destination 10.0.0.5:22']),
        'synced': ok(port(now='open', after='open', container='shop-web-1', image='shop:1.4',
                          compose_project='shop', compose_service='web'), changed=False),
        'quiet': ok(changed=False, docker_firewall_backend='none'),
        'broken': dict(failed=True, changed=False, docker_firewall_backend='none',
                       msg='/etc/ufw/after.rules: line 31 opens a managed block that is never closed'),
        'badvars': dict(failed=True, msg='Validation of arguments failed:\nvalue of ufw_docker_state must be one of'),
        'gone': dict(unreachable=True, changed=False,
                     msg='ssh: connect to host 192.0.2.13 port 22: Connection refused'),
    }


def report():
    return ar.build_report(fleet(), hosts=['web', 'synced', 'quiet', 'broken', 'badvars', 'gone', 'never'],
                           generated=WHEN)


def by_host(rep):
    return dict((h['host'], h) for h in rep['hosts'])


# --------------------------------------------------------------------------------- entries ----

def test_an_ok_result_keeps_the_modules_entries_as_they_are():
    result = fleet()['synced']
    entry = ar.host_entry('synced', result)
    assert list(entry) == list(ar.HOST_KEYS)
    assert entry['status'] == 'ok' and entry['in_sync'] is True and entry['msg'] == 'planned'
    assert entry['published'] == result['published']
    assert entry['docker_firewall_backend'] == 'iptables'


def test_a_changed_check_mode_result_is_a_drifted_host():
    assert ar.host_entry('web', fleet()['web'])['in_sync'] is False


def test_a_failure_keeps_its_reason_and_backend_and_has_no_exposure():
    entry = ar.host_entry('broken', fleet()['broken'])
    assert entry['status'] == 'failed' and entry['in_sync'] is None
    assert 'never closed' in entry['msg']
    assert entry['docker_firewall_backend'] == 'none'
    assert entry['published'] == []


def test_an_unreachable_host_keeps_its_reason():
    entry = ar.host_entry('gone', fleet()['gone'])
    assert entry['status'] == 'unreachable' and 'Connection refused' in entry['msg']
    assert entry['in_sync'] is None and entry['docker_firewall_backend'] is None


@pytest.mark.parametrize('result', [None, {}, 'garbage'])
def test_no_result_is_a_failure_saying_the_task_did_not_run(result):
    entry = ar.host_entry('never', result)
    assert entry['status'] == 'failed' and entry['msg'] == ar.NO_RESULT


def test_a_skipped_task_is_a_failure_with_its_reason():
    entry = ar.host_entry('h', dict(skipped=True, skip_reason='Conditional result was False'))
    assert entry['status'] == 'failed' and 'skipped' in entry['msg'] and 'Conditional' in entry['msg']


def test_a_result_without_an_exposure_report_is_a_failure():
    entry = ar.host_entry('h', dict(changed=False, msg='hello'))
    assert entry['status'] == 'failed' and 'published' in entry['msg'] and 'hello' in entry['msg']


def test_a_message_that_is_not_text_is_kept_as_json():
    assert ar.host_entry('h', dict(failed=True, msg={'a': 1}))['msg'] == '{"a": 1}'


# --------------------------------------------------------------------------------- report -----

def test_the_report_follows_the_play_order_and_keeps_every_host():
    rep = ar.build_report({'b': ok(), 'x': ok(), 'a': ok()}, hosts=['a', 'b', 'c', 'a'], generated=WHEN)
    assert [h['host'] for h in rep['hosts']] == ['a', 'b', 'c', 'x']
    assert by_host(rep)['c']['msg'] == ar.NO_RESULT


def test_the_report_is_dated_in_utc_iso_8601():
    rep = ar.build_report({}, generated=WHEN.astimezone(datetime.timezone(datetime.timedelta(hours=2))))
    assert rep['generated'] == '2026-12-01T09:30:05Z'
    assert rep['version'] == ar.VERSION and rep['hosts'] == []
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', ar.build_report({})['generated'])


def test_the_totals_count_what_the_entries_say():
    t = report()['totals']
    assert list(t) == list(ar.TOTAL_KEYS)
    assert (t['hosts'], t['hosts_ok'], t['hosts_failed'], t['hosts_unreachable']) == (7, 3, 3, 1)
    assert (t['hosts_in_sync'], t['hosts_drifted']) == (2, 1)
    assert t['published'] == 6
    assert t['now'] == dict(open=3, restricted=0, blocked=2, unknown=1)
    assert t['after'] == dict(open=3, restricted=1, blocked=2, unknown=0)
    # 8080 open -> blocked (closed), 10 blocked -> restricted and 9 blocked -> open (opened),
    # 7 unknown -> blocked (neither).
    assert (t['changing'], t['opened'], t['closed']) == (4, 2, 1)
    assert (t['hosts_open_now'], t['hosts_open_after']) == (2, 2)
    assert (t['unrecognised_dnat'], t['warnings']) == (1, 1)
    assert t['docker_firewall_backend'] == {'iptables': 2, 'none': 2, 'unknown': 3}


def test_a_verdict_the_report_does_not_know_counts_as_unknown():
    t = ar.build_report({'h': ok(port(now='wide open', after=None))})['totals']
    assert t['now']['unknown'] == 1 and t['after']['unknown'] == 1


def test_an_empty_play_renders_everywhere():
    rep = ar.build_report({}, hosts=[], generated=WHEN)
    assert rep['totals']['hosts'] == 0 and rep['totals']['now']['open'] == 0
    assert 'No host has a published port' in ar.render_html(rep)
    assert 'None: every host answered.' in ar.render_markdown(rep)
    assert json.loads(ar.render_json(rep)) == rep


# ---------------------------------------------------------------------------------- words -----

def test_ports_sort_by_family_protocol_and_number():
    entry = dict(published=[port(host_port='10'), port(host_port='9'), port(family='ipv6', host_port='1'),
                            port(proto='udp', host_port='2')])
    assert [(p['family'], p['proto'], p['host_port']) for p in ar.sorted_ports(entry)] == [
        ('ipv4', 'tcp', '9'), ('ipv4', 'tcp', '10'), ('ipv4', 'udp', '2'), ('ipv6', 'tcp', '1')]


def test_addresses_and_names_read_as_the_roles_table_has_them():
    assert ar.published_on(port()) == '*:8080'
    assert ar.published_on(port(host_address='192.0.2.1')) == '192.0.2.1:8080'
    assert ar.published_on(port(family='ipv6', host_address='2001:db8::1')) == '[2001:db8::1]:8080'
    assert ar.container(port()) == '172.17.0.2:80'
    assert ar.container(port(family='ipv6')) == '[fd00::2]:80'
    assert ar.container(port(container='web')) == 'web'
    assert ar.container(port(container='shop-web-1', compose_project='shop', compose_service='web')) == 'shop-web-1 (shop/web)'
    assert ar.container(port(container='x.1.abc', swarm_service='x')) == 'x (swarm)'
    assert ar.container(port(mode='ingress', swarm_service='x')) == 'x (swarm ingress)'
    assert ar.container(port(mode='ingress')) == 'swarm ingress (172.17.0.2:80)'
    assert ar.after_words(port(after='restricted', sources=['198.51.100.0/24', '2001:db8::/32'])) == \
        'restricted to 198.51.100.0/24, 2001:db8::/32'


# ----------------------------------------------------------------------------------- JSON -----

def test_report_json_is_the_report():
    rep = report()
    text = ar.render_json(rep)
    assert json.loads(text) == rep and text.endswith('\n')
    assert list(json.loads(text)) == ['version', 'generated', 'hosts', 'totals']


def _documented_keys():
    """The key paths of the table under "### report.json" in the collection README."""
    with open(README, encoding='utf-8') as f:
        text = f.read()
    section = re.search(r'^### report\.json\n(.*?)(?=^##)', text, re.M | re.S)
    assert section, 'README.md has no "### report.json" section'
    return re.findall(r'^\| `([a-z_.\[\]]+)` \|', section.group(1), re.M)


def _key_paths(value, prefix=''):
    if isinstance(value, dict):
        for k, v in value.items():
            path = prefix + '.' + k if prefix else k
            yield path
            if path not in ('totals.docker_firewall_backend',):
                yield from _key_paths(v, path)
    elif isinstance(value, list) and prefix != 'hosts[].published':
        for item in value:
            yield from _key_paths(item, prefix + '[]')


def test_report_json_has_exactly_the_keys_the_readme_documents():
    documented = _documented_keys()
    assert len(documented) == len(set(documented)), 'a key is documented twice'
    actual = set(_key_paths(json.loads(ar.render_json(report()))))
    actual = set(k for k in actual if not k.startswith('hosts[].published[]'))
    assert sorted(actual - set(documented)) == [], 'keys report.json has and the README does not document'
    assert sorted(set(documented) - actual) == [], 'keys the README documents and report.json lacks'


# ----------------------------------------------------------------------------------- HTML -----

def _page(rep=None):
    return ar.render_html(rep or report())


def test_the_page_loads_nothing_from_anywhere():
    page = _page()
    for needle in ('http:', 'https:', '//', 'src=', '<link', '@import', '<iframe', '<object', '<embed'):
        assert needle not in page.replace('</', '<'), needle
    # url() only for the SVG pattern defined in the page itself.
    assert set(re.findall(r'url\(([^)]*)\)', page)) == {'#hatch'}
    # Links only within the page: a host's name filters the table (its rows, as a shareable
    # fragment).
    assert re.findall(r'href="([^"]*)"', page) == ['#q=' + h for h in ('web', 'synced', 'quiet', 'broken', 'badvars', 'gone', 'never')]


def digest(text):
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_the_pages_policy_runs_only_its_own_script_and_style():
    page = _page()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    csp = csp.replace('&#x27;', "'")
    style = re.search(r'<style>(.*?)</style>', page, re.S).group(1)
    script = re.search(r'<script>(.*?)</script>', page, re.S).group(1)
    assert "default-src 'none'" in csp
    assert "style-src 'sha256-%s'" % digest(style) in csp
    assert "script-src 'sha256-%s'" % digest(script) in csp
    assert page.count('<script') == 1 and page.count('<style') == 1
    assert ' style="' not in page and ' on' + 'click=' not in page


def test_hostile_text_from_a_host_stays_text():
    rep = ar.build_report({
        HOSTILE: ok(port(container=HOSTILE, image=HOSTILE, sources=[HOSTILE], after='restricted'),
                    warnings=[HOSTILE], unrecognised_dnat=[HOSTILE]),
        'bad': dict(failed=True, msg=HOSTILE)}, generated=WHEN)
    page = _page(rep)
    assert '<script>alert' not in page and 'alert(&quot;x&quot;)' in page
    md = ar.render_markdown(rep)
    # Raw only inside a code span (the DNAT rules, verbatim), which Markdown shows as it is.
    assert '<script>' not in re.sub(r'`[^`\n]*`', '', md) and '&lt;script&gt;' in md
    # A | in a cell would split it: every table row has its row's number of cells.
    for line in md.splitlines():
        if line.startswith('| '):
            assert len(re.findall(r'(?<!\\)\|', line)) in (3, 4, 9, 10), line


def test_the_page_holds_the_totals_every_host_and_every_row():
    rep = report()
    page = _page(rep)
    text = re.sub(r'<[^>]+>', ' ', page)
    for host in by_host(rep):
        assert '>%s<' % host in page
    cards = re.search(r'<section class="cards" id="totals">(.*?)</section>', page, re.S).group(1)
    values = re.findall(r'<div class="value">(.*?)</div>', cards)
    assert values == ['7', '3', '3', '0<span class="arrow">&rarr;</span>1', '1', '4']
    body = re.search(r'<table class="sortable" id="ports">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = re.findall(r'<tr[ >]', body)
    assert len(rows) == 6 + 4  # six published ports, four hosts without an exposure report
    for reason in ('never closed', 'Connection refused', 'Validation of arguments failed', 'did not run'):
        assert reason in text
    assert 'restricted' in body and 'from 198.51.100.0/24' in body
    assert 'shop-web-1 (shop/web)' in body and '[2001:db8::1]:8080' in body


def test_each_port_row_carries_what_the_filters_read():
    body = re.search(r'<table class="sortable" id="ports">.*?<tbody>(.*?)</tbody>', _page(), re.S).group(1)
    rows = re.findall(r'<tr[^>]*data-now="([a-z]+)" data-after="([a-z]+)" data-family="([a-z0-9]*)" data-change="([01])"', body)
    assert len(rows) == 10
    assert all((now != after) == (change == '1') for now, after, _f, change in rows[:6])


# ------------------------------------------------------------------------------- Markdown -----

def test_the_markdown_has_the_totals_the_problems_and_every_row():
    md = ar.render_markdown(report())
    assert '| published ports open to the internet | 3 | 3 |' in md
    assert '| restricted to some sources | 0 | 1 |' in md
    assert '| drifted (a run would change them) | 1 |' in md
    assert '| unreachable (exposure unknown) | 1 |' in md
    problems = re.search(r'## Hosts failed or unreachable\n(.*?)\n## ', md, re.S).group(1)
    assert [l.split(' | ')[0][2:] for l in problems.splitlines() if l.startswith('| ') and '---' not in l][1:] == \
        ['broken', 'badvars', 'gone', 'never']
    ports = re.search(r'## Published ports\n(.*?)(\n## |\Z)', md, re.S).group(1)
    rows = [l for l in ports.splitlines() if l.startswith('| ') and not l.startswith('| | host')]
    assert len(rows) == 10
    assert '| \\* | web | ipv4 | tcp | `*:8080` | 172.17.0.2:80 | docker0 | open | blocked |' in rows
    assert any('restricted to 198.51.100.0/24' in r for r in rows)


# -------------------------------------------------------------------------------- writing -----

def test_the_files_are_written_into_a_new_directory(tmp_path):
    dest = tmp_path / 'a' / 'b'
    old = os.umask(0o027)
    try:
        paths = ar.write_report(report(), str(dest))
    finally:
        os.umask(old)
    assert paths == dict(json=str(dest / 'report.json'), html=str(dest / 'report.html'),
                         markdown=str(dest / 'report.md'))
    assert sorted(os.listdir(str(dest))) == ['report.html', 'report.json', 'report.md']
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    with open(paths['json'], encoding='utf-8') as f:
        assert json.load(f) == report()


def test_writing_again_replaces_the_files_and_leaves_no_temporary_file(tmp_path):
    ar.write_report(ar.build_report({'a': ok()}, generated=WHEN), str(tmp_path))
    ar.write_report(report(), str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == ['report.html', 'report.json', 'report.md']
    with open(str(tmp_path / 'report.md'), encoding='utf-8') as f:
        assert 'badvars' in f.read()


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def boom(*_args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(ar.os, 'replace', boom)
    with pytest.raises(OSError):
        ar.write_report(report(), str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_paths_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    assert ar.report_paths('out')['html'] == os.path.join(str(tmp_path), 'out', 'report.html')


def test_the_per_host_picture_sums_up_the_hosts_not_audited_and_shows_the_most_exposed():
    results = dict(('down-%02d' % i, dict(unreachable=True, msg='gone')) for i in range(40))
    for i in range(30):
        results['web-%02d' % i] = ok(*[port(host_port=str(8000 + j), now='open', after='open') for j in range(i % 5 + 1)])
    results['closed'] = ok(port(now='blocked', after='blocked'))
    page = _page(ar.build_report(results, generated=WHEN))
    chart = re.search(r'Per host: published ports now and after the policy</h3>(.*?)</div>', page, re.S).group(1)
    # One bar for the 40 hosts not audited, its names cut to fit, all of them in its tooltip.
    assert chart.count('not audited') == 1 and '40 hosts failed or unreachable: down-00, ' in chart
    assert '\u2026</text>' in chart and 'down-39</title>' in chart
    # The 25 hosts with the most ports open, most first; a host with every port blocked is not one.
    labels = re.findall(r'<text x="0" y="\d+"><title>([^<]+)</title>', chart)
    assert len(labels) == 25 and labels[:6] == ['web-04', 'web-09', 'web-14', 'web-19', 'web-24', 'web-29']
    assert 'closed' not in labels and 'and 5 more hosts with ports the internet reaches' in page
