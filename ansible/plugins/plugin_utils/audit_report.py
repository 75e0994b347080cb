# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The fleet exposure audit's report: every host's ufw_docker result in, report.json,
report.html and report.md out.

Why it exists: the audit playbook (playbooks/audit.yml) runs the ufw_docker module in check mode
on every host and keeps each host's result, whatever it is (a module result, a failure, an
unreachable host). This file turns those results into one report, on the controller, once: the
data (``build_report``) and its three renderings (``render_json``, ``render_markdown``,
``render_html``). The action plugin plugins/action/audit_report.py calls it; bench/audit.py
times it; tests/unit/plugins/plugin_utils/test_audit_report.py tests it.

What it must not do: judge a firewall. Who reaches a port now and after the policy is the
module's verdict (``now``, ``after`` in each ``published`` entry), copied as it is; this file
only counts, sorts and renders. It needs nothing but Python's standard library (3.9 and later),
imports nothing from Ansible, and runs on any controller (Linux, macOS).

Everything a host sends (container and image names, warnings, messages) is untrusted text: the
HTML escapes it, and the page's Content-Security-Policy runs only its own script and style
(by their SHA-256) and loads nothing, so that the page stays inert and self-contained on an
air-gapped admin machine.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import os
import tempfile
from urllib.parse import quote

# The report format's version, in report.json as ``version``. Raised when a key changes meaning
# or goes away; new keys may appear in the same version.
VERSION = 1

# Who reaches a published port from the internet, as the module says (exposure.rs's Reach),
# most reachable first.
REACHES = ('open', 'restricted', 'blocked', 'unknown')
_RANK = {'open': 2, 'restricted': 1, 'blocked': 0}

STATUSES = ('ok', 'failed', 'unreachable')

# The keys of a host's entry in report.json, in order.
HOST_KEYS = ('host', 'status', 'msg', 'in_sync', 'docker_firewall_backend', 'published',
             'unrecognised_dnat', 'warnings')

# The keys of report.json's totals, in order (``now`` and ``after`` count per REACHES).
TOTAL_KEYS = ('hosts', 'hosts_ok', 'hosts_failed', 'hosts_unreachable', 'hosts_in_sync',
              'hosts_drifted', 'hosts_open_now', 'hosts_open_after', 'published', 'now', 'after',
              'changing', 'opened', 'closed', 'unrecognised_dnat', 'warnings',
              'docker_firewall_backend')

NO_RESULT = ("no result from the audit task: it did not run on this host (an earlier failure "
             "ended the host's play; see the playbook's output)")


# ---------------------------------------------------------------------------------- the data --

def _strings(value):
    """A list of strings from a result's list (anything else: empty)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def _msg(result):
    msg = result.get('msg')
    if msg is None:
        return ''
    if isinstance(msg, str):
        return msg
    return json.dumps(msg, sort_keys=True, default=str)


def host_entry(host, result):
    """The report's entry for HOST from the result its audit task registered (None or {}: the
    task never ran there).

    ``status`` is ``unreachable`` when Ansible could not reach the host, ``failed`` when the task
    failed (the module's own failure, a templating error, a rejected argument) or left no result,
    ``ok`` otherwise. ``in_sync`` (a run of the module would change nothing: its check-mode
    ``changed`` is false) is known for ``ok`` hosts only, null otherwise. ``published``,
    ``unrecognised_dnat`` and ``warnings`` are the module's, as they are; a failed or unreachable
    host has none to give (its exposure is unknown, not empty)."""
    result = result if isinstance(result, dict) else {}
    entry = dict(host=str(host), status='ok', msg=_msg(result), in_sync=None,
                 docker_firewall_backend=result.get('docker_firewall_backend'),
                 published=[], unrecognised_dnat=_strings(result.get('unrecognised_dnat')),
                 warnings=_strings(result.get('warnings')))
    if entry['docker_firewall_backend'] is not None:
        entry['docker_firewall_backend'] = str(entry['docker_firewall_backend'])
    if not result:
        entry.update(status='failed', msg=NO_RESULT)
    elif result.get('unreachable'):
        entry.update(status='unreachable', msg=entry['msg'] or 'unreachable')
    elif result.get('failed'):
        entry.update(status='failed', msg=entry['msg'] or 'failed without a message')
    elif result.get('skipped'):
        entry.update(status='failed', msg='the audit task was skipped on this host'
                     + (': ' + str(result['skip_reason']) if result.get('skip_reason') else ''))
    elif not isinstance(result.get('published'), list):
        entry.update(status='failed', msg=(
            'the result holds no exposure report (published): it is not a ufw_docker module '
            'result of this collection' + (' (%s)' % entry['msg'] if entry['msg'] else '')))
    else:
        entry['in_sync'] = not result.get('changed', False)
        entry['published'] = [dict(p) for p in result['published'] if isinstance(p, dict)]
    return entry


def totals(hosts):
    """The fleet's totals over the host entries HOSTS (see TOTAL_KEYS and the collection README).
    A row is one published entry: a host, family, protocol, host address and port."""
    t = dict((k, 0) for k in TOTAL_KEYS)
    t['now'] = dict((r, 0) for r in REACHES)
    t['after'] = dict((r, 0) for r in REACHES)
    t['docker_firewall_backend'] = {}
    for h in hosts:
        t['hosts'] += 1
        t['hosts_' + h['status']] += 1
        if h['status'] == 'ok':
            t['hosts_in_sync' if h['in_sync'] else 'hosts_drifted'] += 1
        backend = h['docker_firewall_backend'] or 'unknown'
        t['docker_firewall_backend'][backend] = t['docker_firewall_backend'].get(backend, 0) + 1
        t['unrecognised_dnat'] += len(h['unrecognised_dnat'])
        t['warnings'] += len(h['warnings'])
        open_now = open_after = False
        for p in h['published']:
            now, after = reach(p, 'now'), reach(p, 'after')
            t['published'] += 1
            t['now'][now] += 1
            t['after'][after] += 1
            open_now = open_now or now == 'open'
            open_after = open_after or after == 'open'
            if now != after:
                t['changing'] += 1
                if now in _RANK and after in _RANK:
                    t['opened' if _RANK[after] > _RANK[now] else 'closed'] += 1
        t['hosts_open_now'] += open_now
        t['hosts_open_after'] += open_after
    t['docker_firewall_backend'] = dict(sorted(t['docker_firewall_backend'].items()))
    return t


def reach(port, when):
    """A published entry's ``now`` or ``after``, one of REACHES (anything else: unknown)."""
    value = port.get(when)
    return value if value in REACHES else 'unknown'


def build_report(results, hosts=None, generated=None):
    """The report: ``{"version", "generated", "hosts": [...], "totals": {...}}``.

    RESULTS maps each host's name to the result its audit task registered. HOSTS is the order
    of the report (the play's hosts); a host of HOSTS without a result is in the report as
    failed (NO_RESULT); a host of RESULTS missing from HOSTS comes after them. GENERATED is an
    aware datetime (default: now), written as ISO 8601 in UTC."""
    order = [str(h) for h in (hosts if hosts is not None else results)]
    seen = set(order)
    order += [str(h) for h in results if str(h) not in seen]
    entries, done = [], set()
    for name in order:
        if name in done:
            continue
        done.add(name)
        entries.append(host_entry(name, results.get(name)))
    when = generated or datetime.datetime.now(datetime.timezone.utc)
    when = when.astimezone(datetime.timezone.utc).replace(microsecond=0)
    return dict(version=VERSION, generated=when.isoformat().replace('+00:00', 'Z'),
                hosts=entries, totals=totals(entries))


# ---------------------------------------------------------------------------- rows and words --

def _port_number(port):
    text = str(port.get('host_port', ''))
    head = text.split(':', 1)[0].split('-', 1)[0]
    return int(head) if head.isdigit() else 0


def published_on(port):
    """Where the port is published: ``*:8080``, ``192.0.2.1:8080``, ``[2001:db8::1]:8080``."""
    address = port.get('host_address')
    if address and port.get('family') == 'ipv6':
        address = '[%s]' % address
    return '%s:%s' % (address or '*', port.get('host_port', '?'))


def container(port):
    """Who publishes the port, as the role's table names it: ``name (project/service)`` for
    Compose, ``service (swarm)`` for a Swarm task, ``service (swarm ingress)`` for a port of
    Swarm's routing mesh, the name; else the container's address and port (``swarm ingress
    (address:port)`` for a mesh port the host could not name)."""
    ingress = port.get('mode') == 'ingress'
    if port.get('swarm_service'):
        return '%s (%s)' % (port['swarm_service'], 'swarm ingress' if ingress else 'swarm')
    name = port.get('container')
    if name and port.get('compose_project'):
        return '%s (%s/%s)' % (name, port['compose_project'], port.get('compose_service') or '?')
    if name and not ingress:
        return str(name)
    address = port.get('container_address', '?')
    if port.get('family') == 'ipv6':
        address = '[%s]' % address
    address = '%s:%s' % (address, port.get('container_port', '?'))
    return 'swarm ingress (%s)' % address if ingress else address


def after_words(port):
    """``after``, with the sources of a restricted port."""
    after = reach(port, 'after')
    sources = _strings(port.get('sources'))
    if after == 'restricted' and sources:
        return 'restricted to ' + ', '.join(sources)
    return after


def sorted_ports(entry):
    """A host's published entries in table order: family, protocol, port, address."""
    return sorted(entry['published'], key=lambda p: (
        str(p.get('family', '')), str(p.get('proto', '')), _port_number(p),
        str(p.get('host_address') or '')))


def _plural(n, one, many=None):
    return '%d %s' % (n, one if n == 1 else (many or one + 's'))


# ------------------------------------------------------------------------------------ output --

def render_json(report):
    """report.json's text."""
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False) + '\n'


_MD_ESCAPES = {'\\': '\\\\', '|': '\\|', '`': '&#96;', '*': '\\*', '_': '\\_', '[': '\\[',
               ']': '\\]', '<': '&lt;', '>': '&gt;', '&': '&amp;', '#': '\\#', '~': '\\~'}


def md(text):
    """TEXT as one Markdown table cell or line: no line breaks, no markup."""
    text = ' '.join(str(text).split())
    return ''.join(_MD_ESCAPES.get(c, c) for c in text)


def render_markdown(report):
    """report.md's text: the totals, the hosts that failed or were unreachable with their
    reasons, the drifted hosts, and the table of published ports (now and after)."""
    t, hosts = report['totals'], report['hosts']
    out = []
    w = out.append
    w('# Docker exposure audit')
    w('')
    w('Generated %s by `ufw_docker.ufw_docker.audit`: %s; what the internet reaches on each, '
      'now and after the role\'s policy. Nothing was changed on any host (check mode).'
      % (report['generated'], _plural(t['hosts'], 'host')))
    w('')
    w('| fleet | now | after the policy |')
    w('|---|---:|---:|')
    w('| published ports open to the internet | %d | %d |' % (t['now']['open'], t['after']['open']))
    w('| restricted to some sources | %d | %d |' % (t['now']['restricted'], t['after']['restricted']))
    w('| blocked from the internet | %d | %d |' % (t['now']['blocked'], t['after']['blocked']))
    w('| unknown (a rule the module does not recognise decides) | %d | %d |'
      % (t['now']['unknown'], t['after']['unknown']))
    w('| hosts with a port open to the internet | %d | %d |' % (t['hosts_open_now'], t['hosts_open_after']))
    w('')
    w('| hosts | |')
    w('|---|---:|')
    w('| audited | %d |' % t['hosts'])
    w('| in sync with the policy | %d |' % t['hosts_in_sync'])
    w('| drifted (a run would change them) | %d |' % t['hosts_drifted'])
    w('| failed (exposure unknown) | %d |' % t['hosts_failed'])
    w('| unreachable (exposure unknown) | %d |' % t['hosts_unreachable'])
    w('')
    w('Published ports: %d (a port per host, family, protocol and address); the policy changes '
      '%d of them (%d opened, %d closed). Ports published by something other than Docker: %d. '
      'Warnings: %d.' % (t['published'], t['changing'], t['opened'], t['closed'],
                         t['unrecognised_dnat'], t['warnings']))
    w('')
    failed = [h for h in hosts if h['status'] != 'ok']
    w('## Hosts failed or unreachable')
    w('')
    if failed:
        w('| host | status | reason |')
        w('|---|---|---|')
        for h in failed:
            w('| %s | %s | %s |' % (md(h['host']), h['status'], md(h['msg'])))
    else:
        w('None: every host answered.')
    w('')
    w('## Hosts')
    w('')
    w('| host | status | in sync | Docker firewall | published | open now | open after | warnings |')
    w('|---|---|---|---|---:|---:|---:|---:|')
    for h in hosts:
        sync = {True: 'yes', False: 'drifted', None: '-'}[h['in_sync']]
        now = sum(1 for p in h['published'] if reach(p, 'now') == 'open')
        after = sum(1 for p in h['published'] if reach(p, 'after') == 'open')
        w('| %s | %s | %s | %s | %s | %s | %s | %d |' % (
            md(h['host']), h['status'], sync, md(h['docker_firewall_backend'] or '-'),
            len(h['published']) if h['status'] == 'ok' else '?',
            now if h['status'] == 'ok' else '?', after if h['status'] == 'ok' else '?',
            len(h['warnings'])))
    w('')
    w('## Published ports')
    w('')
    w('`*` marks a port the policy changes.')
    w('')
    w('| | host | family | proto | published on | container | network | now | after the policy |')
    w('|---|---|---|---|---|---|---|---|---|')
    for h in hosts:
        if h['status'] != 'ok':
            w('| | %s | | | | | | %s: exposure unknown | %s: exposure unknown |'
              % (md(h['host']), h['status'], h['status']))
            continue
        for p in sorted_ports(h):
            w('| %s | %s | %s | %s | `%s` | %s | %s | %s | %s |' % (
                '\\*' if reach(p, 'now') != reach(p, 'after') else '', md(h['host']),
                md(p.get('family', '')), md(p.get('proto', '')), published_on(p).replace('`', "'"),
                md(container(p)), md(p.get('bridge') or ''), reach(p, 'now'), md(after_words(p))))
    odd = [(h['host'], rule) for h in hosts for rule in h['unrecognised_dnat']]
    if odd:
        w('')
        w('## Published by something other than Docker (not judged)')
        w('')
        for host, rule in odd:
            w('- %s: `%s`' % (md(host), rule.replace('`', "'")))
    warned = [(h['host'], x) for h in hosts for x in h['warnings']]
    if warned:
        w('')
        w('## Warnings')
        w('')
        for host, text in warned:
            w('- %s: %s' % (md(host), md(text)))
    return '\n'.join(out) + '\n'


# -------------------------------------------------------------------------------------- HTML --

_COLOURS = dict(open='#c62828', restricted='#e08600', blocked='#2e7d32', unknown='#8d8d8d')

_STYLE = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#f5f6f8;--card:#fff;
--open:#c62828;--restricted:#e08600;--blocked:#2e7d32;--unknown:#8d8d8d;--bad:#6a1b9a}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:30px;font-weight:650;line-height:1.2;margin:4px 0 2px;font-variant-numeric:tabular-nums}
.card .note{color:var(--muted);font-size:12.5px}
.card.alert{border-color:var(--open);box-shadow:inset 4px 0 0 var(--open)}
.card.warn{border-color:var(--restricted);box-shadow:inset 4px 0 0 var(--restricted)}
.card.good{box-shadow:inset 4px 0 0 var(--blocked)}
.card.bad{border-color:var(--bad);box-shadow:inset 4px 0 0 var(--bad)}
.arrow{color:var(--muted);font-weight:400;font-size:22px;margin:0 4px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.charts{display:grid;grid-template-columns:5fr 7fr;gap:12px}
.charts h3{font-size:14px;margin:0 0 8px}
.charts h3.gap{margin-top:14px}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;fill:var(--ink)}
svg .muted{fill:var(--muted)}
svg .on{fill:#fff;font-weight:600}
svg .bad{fill:var(--bad);font-weight:600}
svg .small{font-size:10.5px}
.legend{display:flex;flex-wrap:wrap;gap:14px;color:var(--muted);font-size:12.5px;margin-top:8px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.k-open{background:var(--open)}.k-restricted{background:var(--restricted)}
.k-blocked{background:var(--blocked)}.k-unknown{background:var(--unknown)}
.k-bad{background:repeating-linear-gradient(45deg,#dcc6e8 0 2px,#f4ecf8 2px 5px);box-shadow:inset 0 0 0 1px var(--bad)}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{position:sticky;top:0;background:#eef0f4;z-index:1;white-space:nowrap}
th button{all:unset;cursor:pointer;font-weight:600}
th button::after{content:" \\2195";color:#a0a7b4;font-weight:400}
th[aria-sort=ascending] button::after{content:" \\2191";color:var(--ink)}
th[aria-sort=descending] button::after{content:" \\2193";color:var(--ink)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.tag{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.t-open{background:var(--open)}.t-restricted{background:var(--restricted)}
.t-blocked{background:var(--blocked)}.t-unknown{background:var(--unknown)}
.t-failed,.t-unreachable{background:var(--bad)}.t-ok{background:#455a64}
.t-sync{background:var(--blocked)}.t-drift{background:var(--restricted)}
.src{color:var(--muted);font-size:12px}
tr.change td:first-child{box-shadow:inset 3px 0 0 var(--restricted)}
tr.down td{background:#faf5fc}
.tablewrap{max-height:720px;overflow:auto;border:1px solid var(--line);border-radius:8px}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:0 0 10px}
.filters input[type=search]{min-width:330px;padding:6px 9px;border:1px solid #c3c9d4;border-radius:6px;font:inherit}
.filters select{padding:5px 6px;border:1px solid #c3c9d4;border-radius:6px;font:inherit;background:#fff}
.filters label{color:var(--muted)}
.count{margin-left:auto;color:var(--muted)}
.problems td{background:#fbf7fd}
.problems .msg{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;white-space:pre-wrap;word-break:break-word}
details{margin-top:12px}
summary{cursor:pointer;color:var(--muted)}
ul.plain{margin:6px 0 0;padding-left:18px}
.empty{color:var(--muted);padding:10px}
footer{color:var(--muted);font-size:12.5px;margin-top:28px}
@media (max-width:1000px){.cards{grid-template-columns:repeat(3,1fr)}.charts{grid-template-columns:1fr}}
@media print{.tablewrap{max-height:none;overflow:visible}.filters{display:none}}
"""

_SCRIPT = """
(function () {
  'use strict';
  var rank = {open: 4, restricted: 3, unknown: 2, blocked: 1};
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };
  function key(td, type) {
    var v = td ? (td.getAttribute('data-v') !== null ? td.getAttribute('data-v') : td.textContent) : '';
    if (type === 'num') { var n = parseFloat(v); return isNaN(n) ? -1 : n; }
    if (type === 'reach') { return rank[v] || 0; }
    return v.toLowerCase();
  }
  /* Sorts TABLE by the column whose header has data-key NAME (dir 1 up, -1 down); stable, so
     that sorting by one column after another keeps the earlier order within ties. */
  function sortBy(table, name, dir) {
    var heads = table.tHead.rows[0].cells, col = -1;
    each(heads, function (th, i) {
      th.removeAttribute('aria-sort');
      if (th.getAttribute('data-key') === name) { col = i; }
    });
    if (col < 0) { return false; }
    var th = heads[col], type = th.getAttribute('data-type') || 'text', body = table.tBodies[0];
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var rows = Array.prototype.map.call(body.rows, function (r, i) {
      return {r: r, k: key(r.cells[col], type), i: i};
    });
    rows.sort(function (a, b) {
      if (a.k < b.k) { return -dir; }
      if (a.k > b.k) { return dir; }
      return a.i - b.i;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (x) { frag.appendChild(x.r); });
    body.appendChild(frag);
    return true;
  }
  var ports = document.getElementById('ports'), sorted = '';
  each(document.querySelectorAll('table.sortable'), function (table) {
    each(table.tHead.rows[0].cells, function (th) {
      var button = th.querySelector('button');
      if (!button) { return; }
      button.addEventListener('click', function () {
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1, name = th.getAttribute('data-key');
        sortBy(table, name, dir);
        if (table === ports) { sorted = (dir === 1 ? '' : '-') + name; save(); }
      });
    });
  });
  if (!ports) { return; }
  var q = document.getElementById('q'), now = document.getElementById('f-now'),
      after = document.getElementById('f-after'), fam = document.getElementById('f-family'),
      chg = document.getElementById('f-change'), count = document.getElementById('count');
  var rows = Array.prototype.slice.call(ports.tBodies[0].rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  function apply() {
    var words = q.value.toLowerCase().split(/\\s+/).filter(Boolean), shown = 0;
    rows.forEach(function (r, i) {
      var d = r.dataset, ok = (!now.value || d.now === now.value) &&
        (!after.value || d.after === after.value) && (!fam.value || d.family === fam.value) &&
        (!chg.checked || d.change === '1') &&
        words.every(function (w) { return text[i].indexOf(w) !== -1; });
      r.hidden = !ok;
      shown += ok ? 1 : 0;
    });
    count.textContent = shown + ' of ' + rows.length + ' rows';
  }
  /* The filters and the sort live in the address's fragment (#q=web&now=open&sort=-port), so
     that a view of the report can be shared as a link. */
  function save() {
    var p = [];
    [['q', q.value], ['now', now.value], ['after', after.value], ['family', fam.value],
     ['change', chg.checked ? '1' : ''], ['sort', sorted]].forEach(function (kv) {
      if (kv[1]) { p.push(kv[0] + '=' + encodeURIComponent(kv[1])); }
    });
    try { history.replaceState(null, '', '#' + p.join('&')); } catch (e) { /* a file: page may refuse */ }
  }
  function load() {
    var p = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) { try { p[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* ignored */ } }
    });
    q.value = p.q || '';
    [[now, p.now], [after, p.after], [fam, p.family]].forEach(function (x) {
      x[0].value = x[1] && x[0].querySelector('option[value="' + x[1].replace(/[^a-z0-9]/g, '') + '"]') ? x[1] : '';
    });
    chg.checked = p.change === '1';
    sorted = '';
    if (p.sort && sortBy(ports, p.sort.replace(/^-/, ''), p.sort.charAt(0) === '-' ? -1 : 1)) { sorted = p.sort; }
    apply();
  }
  [q, now, after, fam, chg].forEach(function (el) { el.addEventListener('input', function () { apply(); save(); }); });
  each(document.querySelectorAll('a[data-host]'), function (a) {
    a.addEventListener('click', function (ev) {
      ev.preventDefault();
      q.value = a.getAttribute('data-host');
      apply();
      save();
      ports.scrollIntoView();
    });
  });
  window.addEventListener('hashchange', load);
  load();
}());
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')


def _tag(word, cls=None):
    return '<span class="tag t-%s">%s</span>' % (_e(cls or word), _e(word))


def _card(label, value, note, cls=''):
    return ('<div class="card %s"><div class="label">%s</div><div class="value">%s</div>'
            '<div class="note">%s</div></div>' % (cls, _e(label), value, note))


def _fleet_bars(t):
    """Two stacked bars: every published port by who reaches it now, and after the policy,
    plus the hosts whose exposure is unknown."""
    width, left, height = 430, 56, 26
    total = max(t['published'], 1)
    out = ['<svg role="img" aria-label="published ports by reach, now and after the policy" '
           'width="100%%" viewBox="0 0 %d 104">' % (width + left + 10)]
    for y, when, label in ((8, 'now', 'now'), (52, 'after', 'after')):
        out.append('<text x="0" y="%d">%s</text>' % (y + 17, label))
        x = float(left)
        for r in REACHES:
            n = t[when][r]
            if not n:
                continue
            w = width * n / total
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %d</title></rect>'
                       % (x, y, w, height, _COLOURS[r], label, r, n))
            if w > 26:
                out.append('<text x="%.1f" y="%d" class="on" text-anchor="middle">%d</text>'
                           % (x + w / 2, y + 17, n))
            x += w
        if not t['published']:
            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#eceff3"/>' % (left, y, width, height))
            out.append('<text x="%d" y="%d" class="muted">no published port</text>' % (left + 8, y + 17))
    out.append('</svg>')
    return ''.join(out)


def _changes(t, hosts):
    """What the policy changes, in words, under the fleet's bars."""
    stay = sum(1 for h in hosts for p in h['published'] if reach(p, 'now') == 'open' and reach(p, 'after') == 'open')
    items = [
        '<li><b>%d</b> %s: less of the internet reaches %s</li>'
        % (t['closed'], 'port closes or narrows' if t['closed'] == 1 else 'ports close or narrow',
           'it' if t['closed'] == 1 else 'them'),
        '<li><b>%d</b> %s: more of the internet reaches %s</li>'
        % (t['opened'], 'port opens or widens' if t['opened'] == 1 else 'ports open or widen',
           'it' if t['opened'] == 1 else 'them'),
        '<li><b>%d</b> %s open to everyone, as the policy allows</li>' % (stay, 'port stays' if stay == 1 else 'ports stay'),
    ]
    if t['changing'] - t['opened'] - t['closed']:
        items.append('<li><b>%d</b> change to or from unknown</li>' % (t['changing'] - t['opened'] - t['closed']))
    return '<h3 class="gap">What the policy changes</h3><ul class="plain">%s</ul>' % ''.join(items)


_HOST_CHART_MAX = 25


def _host_bars(hosts):
    """Per host, its published ports by who reaches them now and after, for the hosts with the
    most ports open to the internet (now, then after); above them, one bar for the hosts whose
    exposure is unknown (failed or unreachable), which the table of problems lists one by one."""
    down = [h['host'] for h in hosts if h['status'] != 'ok']
    exposed = []
    for h in hosts:
        if h['status'] != 'ok':
            continue
        now = sum(1 for p in h['published'] if reach(p, 'now') == 'open')
        after = sum(1 for p in h['published'] if reach(p, 'after') == 'open')
        if now or after or any(reach(p, 'now') != 'blocked' or reach(p, 'after') != 'blocked'
                               for p in h['published']):
            exposed.append((now, after, h))
    exposed.sort(key=lambda s: (-s[0], -s[1], s[2]['host']))
    shown, rest = exposed[:_HOST_CHART_MAX], exposed[_HOST_CHART_MAX:]
    if not shown and not down:
        return '<p class="empty">No host has a published port that the internet reaches, now or after the policy.</p>'
    most = max([len(s[2]['published']) for s in shown] + [1])
    # Room for the longest name shown (22 characters at most, cut beyond), the bars, and the
    # "after: N open" after the longest bar.
    name_w = 16 + 7 * min(22, max([len(s[2]['host']) for s in shown] + [len('not audited')]))
    width, row = 560 - name_w, 34
    rows = len(shown) + (1 if down else 0)
    out = ['<svg role="img" aria-label="published ports per host, now and after the policy" '
           'width="100%%" viewBox="0 0 %d %d">' % (name_w + width + 100, row * rows + 6),
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4ecf8"/>'
           '<rect width="2" height="6" fill="#dcc6e8"/></pattern></defs>']
    y = 4
    if down:
        names, room = [], width // 8 - 34
        for name in down:
            if len(', '.join(names + [name])) > room:
                names.append('\u2026')
                break
            names.append(name)
        out.append('<text x="0" y="%d" class="muted">not audited</text>' % (y + 17))
        out.append('<rect x="%d" y="%d" width="%d" height="24" rx="3" fill="url(#hatch)" stroke="#6a1b9a">'
                   '<title>%s</title></rect>' % (name_w, y + 2, width, _e(', '.join(down[:200]))))
        out.append('<text x="%d" y="%d" class="bad">%s failed or unreachable: %s</text>'
                   % (name_w + 10, y + 18, _plural(len(down), 'host'), _e(', '.join(names))))
        y += row
    for now_open, after_open, h in shown:
        name = h['host'] if len(h['host']) <= 22 else h['host'][:21] + '\u2026'
        out.append('<text x="0" y="%d"><title>%s</title>%s</text>' % (y + 17, _e(h['host']), _e(name)))
        for j, (when, n_open) in enumerate((('now', now_open), ('after', after_open))):
            x, yy = float(name_w), y + 2 + j * 13
            for r in REACHES:
                n = sum(1 for p in h['published'] if reach(p, when) == r)
                if not n:
                    continue
                w = width * n / most
                out.append('<rect x="%.1f" y="%d" width="%.1f" height="11" fill="%s"><title>%s %s %s: %d</title></rect>'
                           % (x, yy, w, _COLOURS[r], _e(h['host']), when, r, n))
                x += w
            out.append('<text x="%.1f" y="%d" class="muted small">%s: %d open</text>' % (x + 5, yy + 10, when, n_open))
        y += row
    out.append('</svg>')
    if rest:
        out.append('<p class="src">and %d more %s with ports the internet reaches (the table below lists '
                   'every one)</p>' % (len(rest), 'host' if len(rest) == 1 else 'hosts'))
    return ''.join(out)


def _host_rows(hosts):
    rows = []
    for h in hosts:
        ok = h['status'] == 'ok'
        now = sum(1 for p in h['published'] if reach(p, 'now') == 'open')
        after = sum(1 for p in h['published'] if reach(p, 'after') == 'open')
        sync = (_tag('in sync', 'sync') if h['in_sync'] else _tag('drifted', 'drift')) if ok else '-'
        rows.append(
            '<tr%s><td><a href="#q=%s" data-host="%s">%s</a></td><td data-v="%s">%s</td>'
            '<td data-v="%s">%s</td><td>%s</td><td class="num" data-v="%s">%s</td>'
            '<td class="num" data-v="%s">%s</td><td class="num" data-v="%s">%s</td>'
            '<td class="num">%d</td><td class="src">%s</td></tr>' % (
                '' if ok else ' class="down"', _e(quote(h['host'], safe='')), _e(h['host']), _e(h['host']), h['status'],
                _tag(h['status']), {True: 1, False: 0, None: -1}[h['in_sync']], sync,
                _e(h['docker_firewall_backend'] or '-'),
                len(h['published']) if ok else -1, len(h['published']) if ok else '?',
                now if ok else -1, now if ok else '?', after if ok else -1, after if ok else '?',
                len(h['warnings']), _e(h['msg'])))
    return ''.join(rows)


def _port_rows(hosts):
    rows = []
    for h in hosts:
        if h['status'] != 'ok':
            rows.append(
                '<tr class="down" data-now="unknown" data-after="unknown" data-family="" data-change="0">'
                '<td>%s</td><td></td><td></td><td data-v="-1"></td><td colspan="2" class="src">%s</td>'
                '<td data-v="unknown">%s</td><td data-v="unknown">%s</td></tr>'
                % (_e(h['host']), _e(h['msg']), _tag(h['status']), _tag(h['status'])))
            continue
        for p in sorted_ports(h):
            now, after = reach(p, 'now'), reach(p, 'after')
            sources = _strings(p.get('sources')) if after == 'restricted' else []
            trusted = _strings(p.get('trusted'))
            extra = ''
            if sources:
                extra += '<div class="src">from %s</div>' % _e(', '.join(sources))
            if trusted:
                extra += '<div class="src">trusted: %s</div>' % _e(', '.join(trusted))
            image = p.get('image')
            who = _e(container(p)) + ('<div class="src">%s</div>' % _e(image) if image else '')
            rows.append(
                '<tr%s data-now="%s" data-after="%s" data-family="%s" data-change="%d">'
                '<td>%s</td><td>%s</td><td>%s</td><td class="mono" data-v="%d">%s</td>'
                '<td>%s</td><td class="mono">%s</td><td data-v="%s">%s</td><td data-v="%s">%s%s</td></tr>' % (
                    ' class="change"' if now != after else '', now, after,
                    _e(p.get('family', '')), now != after, _e(h['host']), _e(p.get('family', '')),
                    _e(p.get('proto', '')), _port_number(p), _e(published_on(p)), who,
                    _e(p.get('bridge') or ''), now, _tag(now), after, _tag(after), extra))
    return ''.join(rows)


def render_html(report):
    """report.html's text: one self-contained page (inline style, script and SVG; no request of
    any kind), readable without its script (which only sorts and filters the tables)."""
    t, hosts = report['totals'], report['hosts']
    down = t['hosts_failed'] + t['hosts_unreachable']
    unknown_note = (' + %s not audited' % _plural(down, 'host')) if down else ''
    delta = t['after']['open'] - t['now']['open']
    cards = ''.join([
        _card('Hosts', str(t['hosts']), '%d answered &middot; %d failed &middot; %d unreachable'
              % (t['hosts_ok'], t['hosts_failed'], t['hosts_unreachable'])),
        _card('Open to the internet now', str(t['now']['open']),
              'ports on %s%s' % (_plural(t['hosts_open_now'], 'host'), unknown_note),
              'alert' if t['now']['open'] else 'good'),
        _card('Open after the policy', '%d' % t['after']['open'],
              '%s &middot; on %s' % (('%+d from now' % delta).replace('-', '&minus;') if delta else 'as many as now',
                                     _plural(t['hosts_open_after'], 'host')),
              'alert' if t['after']['open'] > t['now']['open'] else ('good' if not t['after']['open'] else '')),
        _card('Restricted', '%d<span class="arrow">&rarr;</span>%d' % (t['now']['restricted'], t['after']['restricted']),
              'ports open to listed sources only, now &rarr; after', 'warn' if t['after']['restricted'] else ''),
        _card('Hosts drifted', str(t['hosts_drifted']),
              '%d in sync &middot; the policy changes %s' % (t['hosts_in_sync'], _plural(t['changing'], 'port')),
              'warn' if t['hosts_drifted'] else 'good'),
        _card('Failed or unreachable', str(down), 'exposure unknown: see below' if down else 'every host answered',
              'bad' if down else 'good'),
    ])
    problems = [h for h in hosts if h['status'] != 'ok']
    if problems:
        plist = ('<table class="problems"><thead><tr><th>host</th><th>status</th><th>reason</th></tr></thead><tbody>'
                 + ''.join('<tr><td>%s</td><td>%s</td><td class="msg">%s</td></tr>'
                           % (_e(h['host']), _tag(h['status']), _e(h['msg'])) for h in problems)
                 + '</tbody></table>')
    else:
        plist = '<p class="empty">None: every host answered.</p>'
    odd = [(h['host'], x) for h in hosts for x in h['unrecognised_dnat']]
    warned = [(h['host'], x) for h in hosts for x in h['warnings']]
    notes = ''
    if odd:
        items = ''.join('<li><b>%s</b>: <span class="mono">%s</span></li>' % (_e(h), _e(x)) for h, x in odd)
        notes += ('<details><summary>%s published by something other than Docker (not judged)</summary>'
                  '<ul class="plain">%s</ul></details>' % (_plural(len(odd), 'DNAT rule'), items))
    if warned:
        notes += ('<details><summary>%s</summary><ul class="plain">%s</ul></details>'
                  % (_plural(len(warned), 'warning'), ''.join('<li><b>%s</b>: %s</li>' % (_e(h), _e(x)) for h, x in warned)))
    options = ''.join('<option value="%s">%s</option>' % (r, r) for r in REACHES)
    style, script = _STYLE.strip(), _SCRIPT.strip()
    csp = ("default-src 'none'; style-src %s; script-src %s; img-src 'none'; base-uri 'none'; "
           "form-action 'none'" % (_csp_hash(style), _csp_hash(script)))
    legend = ('<div class="legend"><span><i class="k-open"></i>open to the internet</span>'
              '<span><i class="k-restricted"></i>restricted to listed sources</span>'
              '<span><i class="k-blocked"></i>blocked</span><span><i class="k-unknown"></i>unknown</span>'
              '<span><i class="k-bad"></i>host failed or unreachable</span></div>')
    page = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % _e(csp),
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>Docker exposure audit, %s</title>' % _e(report['generated']),
        '<style>%s</style></head><body><main>' % style,
        '<h1>Docker exposure audit</h1>',
        '<p class="sub">What the internet reaches on every host, now and after the role\'s policy &middot; '
        '%s &middot; generated <time datetime="%s">%s</time> by <span class="mono">ufw_docker.ufw_docker.audit</span> '
        '(check mode: nothing was changed)</p>' % (_plural(t['hosts'], 'host'), _e(report['generated']), _e(report['generated'])),
        '<section class="cards" id="totals">%s</section>' % cards,
        '<h2>Where exposure sits</h2><div class="charts">',
        '<div class="panel"><h3>Every published port (%d), by who on the internet reaches it</h3>%s%s</div>'
        % (t['published'], _fleet_bars(t), _changes(t, hosts)),
        '<div class="panel"><h3>Per host: published ports now and after the policy</h3>%s</div>' % _host_bars(hosts),
        '</div>%s' % legend,
        '<h2 id="problems">Hosts failed or unreachable (%d)</h2>%s' % (down, plist),
        notes,
        '<h2 id="published">Published ports: host &times; port &times; family, now and after</h2>',
        '<div class="filters"><input type="search" id="q" placeholder="Filter: host, port, container, image, network" '
        'aria-label="filter the ports">'
        '<label>now <select id="f-now"><option value="">any</option>%s</select></label>' % options,
        '<label>after <select id="f-after"><option value="">any</option>%s</select></label>' % options,
        '<label>family <select id="f-family"><option value="">any</option><option>ipv4</option><option>ipv6</option></select></label>',
        '<label><input type="checkbox" id="f-change"> only ports the policy changes</label>',
        '<span class="count" id="count">%s</span></div>' % _plural(t['published'] + down, 'row'),
        '<div class="tablewrap"><table class="sortable" id="ports"><thead><tr>'
        '<th data-key="host"><button>host</button></th><th data-key="family"><button>family</button></th>'
        '<th data-key="proto"><button>proto</button></th>'
        '<th data-key="port" data-type="num"><button>published on</button></th>'
        '<th data-key="container"><button>container</button></th><th data-key="network"><button>network</button></th>'
        '<th data-key="now" data-type="reach"><button>now</button></th>'
        '<th data-key="after" data-type="reach"><button>after the policy</button></th></tr></thead><tbody>',
        _port_rows(hosts),
        '</tbody></table></div>',
        '<h2 id="hosts">Hosts (%d)</h2>' % t['hosts'],
        '<div class="tablewrap"><table class="sortable" id="hosts-table"><thead><tr>'
        '<th data-key="host"><button>host</button></th><th data-key="status"><button>status</button></th>'
        '<th data-key="sync" data-type="num"><button>in sync</button></th>'
        '<th data-key="backend"><button>Docker firewall</button></th>'
        '<th data-key="published" class="num" data-type="num"><button>published</button></th>'
        '<th data-key="open-now" class="num" data-type="num"><button>open now</button></th>'
        '<th data-key="open-after" class="num" data-type="num"><button>open after</button></th>'
        '<th data-key="warnings" class="num" data-type="num"><button>warnings</button></th>'
        '<th data-key="msg"><button>message</button></th></tr></thead><tbody>',
        _host_rows(hosts),
        '</tbody></table></div>',
        '<footer>Each row is one port Docker publishes on a host, per family and protocol; "now" is who on the '
        'internet reaches it through the live firewall, "after" who would once the role runs with its policy '
        '(the ufw_docker module\'s check-mode verdict). The same report is in report.json and report.md '
        'beside this page.</footer>',
        '</main><script>%s</script></body></html>\n' % script,
    ]
    return ''.join(page)


# ----------------------------------------------------------------------------------- writing --

FILES = (('json', 'report.json', render_json), ('html', 'report.html', render_html),
         ('markdown', 'report.md', render_markdown))


def _write_atomically(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='\n') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def report_dir(directory):
    """DIRECTORY as an absolute path (``~`` expanded, relative to the working directory)."""
    return os.path.abspath(os.path.expanduser(str(directory)))


def report_paths(directory):
    """``{"json": path, "html": path, "markdown": path}`` of the report in DIRECTORY."""
    return dict((kind, os.path.join(report_dir(directory), name)) for kind, name, _render in FILES)


def write_report(report, directory):
    """Writes report.json, report.html and report.md into DIRECTORY (made when missing), each
    atomically (a temporary file in DIRECTORY, renamed); returns report_paths(DIRECTORY)."""
    paths = report_paths(directory)
    os.makedirs(report_dir(directory), exist_ok=True)
    for kind, _name, render in FILES:
        _write_atomically(paths[kind], render(report))
    return paths
