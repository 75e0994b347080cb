#!/usr/bin/env python3
"""Checks of the fleet audit's report, for tests/fleet/audit-test.sh.

Why it exists: the audit test compares what the audit wrote (report.json, and report.html as a
real browser rendered it, report.md) with the hosts themselves: real packets, real statuses.
These are the checks that read the files; the shell script does what touches the hosts. Each
command exits 0 when its check holds; otherwise it says what it found on stderr and exits 1.
It reads the files as a consumer would and recomputes what it checks (the totals, the rows)
from report.json's hosts; it does not import the collection's renderer.

usage:
  audit-check.py status REPORT HOST STATUS [REGEX]   the host's status, and its msg matches REGEX
  audit-check.py sync REPORT HOST true|false|null     the host's in_sync
  audit-check.py backend REPORT HOST VALUE            its docker_firewall_backend (null: None)
  audit-check.py verdicts REPORT HOST WHEN ROW=V...   the host's rows (family/proto/port, e.g.
                                                      ipv4/tcp/8080) are exactly these, with
                                                      these verdicts now or after; V may be
                                                      restricted:SOURCE,SOURCE
  audit-check.py named REPORT HOST                    every row of the host names its container
  audit-check.py probes REPORT HOST WHEN V4 V6 FROM4 FROM6
                                                      prints one line per row: proto, address,
                                                      port, the container, and open or closed:
                                                      what a prober at FROM4/FROM6 must see if
                                                      the verdict is right (the host's own
                                                      addresses V4/V6 for a port on every one)
  audit-check.py totals REPORT                        the totals are the hosts' counts
  audit-check.py carried NEW OLD HOST                 in NEW the host is in sync and each row's
                                                      now is OLD's after (same rows)
  audit-check.py checkmode EVENTS TASK HOST...        the task's result on each host says it ran
                                                      in check mode
  audit-check.py dom DOM REPORT                       the rendered page shows the totals and
                                                      every row, and its script ran (the count
                                                      reads 'N of N rows')
  audit-check.py dom-filter DOM REPORT HOST AFTER     with #q=HOST&after=AFTER, the page shows
                                                      exactly those rows of report.json
  audit-check.py md MD REPORT                         report.md has every row and failed host
  audit-check.py png PNG WIDTH HEIGHT                 a PNG of that size, not blank
"""

from __future__ import annotations

import html.parser
import ipaddress
import json
import re
import struct
import sys
import zlib

REACHES = ("open", "restricted", "blocked", "unknown")


def fail(what: str):
    print(f"audit-check: {what}", file=sys.stderr)
    sys.exit(1)


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def host(report: dict, name: str) -> dict:
    for h in report["hosts"]:
        if h["host"] == name:
            return h
    fail(f"no host {name} in the report (hosts: {[h['host'] for h in report['hosts']]})")


def row_key(p: dict) -> str:
    return f"{p['family']}/{p['proto']}/{p['host_port']}"


def published_on(p: dict) -> str:
    address = p.get("host_address")
    if address and p["family"] == "ipv6":
        address = f"[{address}]"
    return f"{address or '*'}:{p['host_port']}"


def cmd_status(report, name, status, regex=None):
    h = host(load(report), name)
    if h["status"] != status or (regex and not re.search(regex, h["msg"])):
        fail(f"{name}: status {h['status']}, msg {h['msg']!r}; expected {status}"
             + (f" and a msg matching {regex!r}" if regex else ""))


def cmd_sync(report, name, want):
    got = host(load(report), name)["in_sync"]
    if json.dumps(got) != want:
        fail(f"{name}: in_sync {json.dumps(got)}, expected {want}")


def cmd_backend(report, name, want):
    got = host(load(report), name)["docker_firewall_backend"]
    if (got if got is not None else "null") != want:
        fail(f"{name}: docker_firewall_backend {got!r}, expected {want}")


def verdict(p: dict, when: str) -> str:
    v = p[when]
    if when == "after" and v == "restricted":
        v += ":" + ",".join(p.get("sources", []))
    return v


def cmd_verdicts(report, name, when, *specs):
    rows = {row_key(p): verdict(p, when) for p in host(load(report), name)["published"]}
    want = dict(s.split("=", 1) for s in specs)
    if rows != want:
        fail(f"{name} {when}: {json.dumps(rows, sort_keys=True)}, expected {json.dumps(want, sort_keys=True)}")


def cmd_named(report, name):
    unnamed = [row_key(p) for p in host(load(report), name)["published"] if not p.get("container")]
    if unnamed:
        fail(f"{name}: rows without a container name: {unnamed}")


def reaches(p: dict, when: str, source: str) -> bool:
    """Whether a new connection from SOURCE reaches the port, if the verdict is right."""
    addr = ipaddress.ip_address(source)

    def within(nets):
        return any(addr in ipaddress.ip_network(n, strict=False) for n in nets
                   if ipaddress.ip_network(n, strict=False).version == addr.version)

    if within(p.get("trusted", [])):
        return True
    v = p[when]
    if v == "open":
        return True
    if v == "blocked":
        return False
    if v == "restricted":
        return within(p.get("sources", []))
    fail(f"{row_key(p)}: verdict {v!r} {when}: no packet can check it")


def cmd_probes(report, name, when, v4, v6, from4, from6):
    for p in host(load(report), name)["published"]:
        v6row = p["family"] == "ipv6"
        address = p.get("host_address") or (v6 if v6row else v4)
        expect = "open" if reaches(p, when, from6 if v6row else from4) else "closed"
        print(p["proto"], address, p["host_port"], p.get("container", "-"), expect)


def cmd_totals(report):
    r = load(report)
    t, hosts = r["totals"], r["hosts"]
    rows = [p for h in hosts for p in h["published"]]
    want = {
        "hosts": len(hosts),
        "hosts_ok": sum(h["status"] == "ok" for h in hosts),
        "hosts_failed": sum(h["status"] == "failed" for h in hosts),
        "hosts_unreachable": sum(h["status"] == "unreachable" for h in hosts),
        "hosts_in_sync": sum(h["in_sync"] is True for h in hosts),
        "hosts_drifted": sum(h["in_sync"] is False for h in hosts),
        "hosts_open_now": sum(any(p["now"] == "open" for p in h["published"]) for h in hosts),
        "hosts_open_after": sum(any(p["after"] == "open" for p in h["published"]) for h in hosts),
        "published": len(rows),
        "now": {v: sum(p["now"] == v for p in rows) for v in REACHES},
        "after": {v: sum(p["after"] == v for p in rows) for v in REACHES},
        "changing": sum(p["now"] != p["after"] for p in rows),
        "unrecognised_dnat": sum(len(h["unrecognised_dnat"]) for h in hosts),
        "warnings": sum(len(h["warnings"]) for h in hosts),
    }
    got = {k: t.get(k) for k in want}
    if got != want:
        fail(f"totals {json.dumps(got, sort_keys=True)}, the hosts say {json.dumps(want, sort_keys=True)}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["generated"]):
        fail(f"generated {r['generated']!r} is not ISO 8601 UTC")
    print(json.dumps(t, sort_keys=True))


def cmd_carried(new, old, name):
    n, o = host(load(new), name), host(load(old), name)
    if n["in_sync"] is not True:
        fail(f"{name}: in_sync {n['in_sync']} after the role ran")
    was = {row_key(p): p["after"] for p in o["published"]}
    now = {row_key(p): p["now"] for p in n["published"]}
    if was != now or any(p["now"] != p["after"] for p in n["published"]):
        fail(f"{name}: now {json.dumps(now, sort_keys=True)}, the first audit's after "
             f"{json.dumps(was, sort_keys=True)}")


def cmd_checkmode(events, task, *hosts):
    results = {}
    with open(events, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["event"] == "result" and task in e["task"]:
                results[e["host"]] = e["result"]
    wrong = {h: results.get(h, {}).get("check_mode") for h in hosts if results.get(h, {}).get("check_mode") is not True}
    if wrong:
        fail(f"task '{task}': check_mode of {wrong} (results for {sorted(results)})")


class Page(html.parser.HTMLParser):
    """The rendered page's text, its cards, the ports table's rows (cells' text, hidden or not)
    and the count."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.rows, self.cards, self.count = [], [], [], ""
        self._in_ports = self._row = self._cell = self._card_value = self._count = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "table" and a.get("id") == "ports":
            self._in_ports = True
        if self._in_ports and tag == "tr" and self._row is None and "data-now" in a:
            self._row = {"hidden": "hidden" in a, "cells": []}
        if self._row is not None and tag == "td":
            self._cell = []
        if tag == "div" and a.get("class") == "value":
            self._card_value = []
        if a.get("id") == "count":
            self._count = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "table":
            self._in_ports = False
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row["cells"].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag == "div" and self._card_value is not None:
            self.cards.append(" ".join(" ".join(self._card_value).split()))
            self._card_value = None
        if tag == "span" and self._count is not None:
            self.count = "".join(self._count).strip()
            self._count = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        for part in (self._cell, self._card_value, self._count):
            if part is not None:
                part.append(data)


def page(path) -> Page:
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def expected_rows(r: dict):
    """The ports table's rows as report.json gives them: host, family, proto, published on,
    now, after (for a host without a report: host, status)."""
    for h in r["hosts"]:
        if h["status"] != "ok":
            yield (h["host"], h["status"])
            continue
        for p in h["published"]:
            yield (h["host"], p["family"], p["proto"], published_on(p), p["now"], p["after"])


def shown_rows(pg: Page, visible_only=False):
    out = []
    for row in pg.rows:
        if visible_only and row["hidden"]:
            continue
        c = row["cells"]
        if len(c) == 7:  # a host without a report: host, 3 empty, reason, status twice
            out.append((c[0], c[5]))
        else:
            out.append((c[0], c[1], c[2], c[3], c[6].split()[0], c[7].split()[0]))
    return out


def cmd_dom(dom, report):
    r, pg = load(report), page(dom)
    t = r["totals"]
    text = " ".join(" ".join(pg.text).split())
    down = t["hosts_failed"] + t["hosts_unreachable"]
    want_cards = [str(t["hosts"]), str(t["now"]["open"]), str(t["after"]["open"]),
                  f"{t['now']['restricted']}\u2192{t['after']['restricted']}", str(t["hosts_drifted"]), str(down)]
    if [c.replace(" ", "") for c in pg.cards] != want_cards:
        fail(f"the cards show {pg.cards}, report.json's totals say {want_cards}")
    for label in ("Hosts", "Open to the internet now", "Open after the policy", "Restricted",
                  "Hosts drifted", "Failed or unreachable"):
        if label.lower() not in text.lower():
            fail(f"the page does not say {label!r}")
    note = f"{t['hosts_ok']} answered \u00b7 {t['hosts_failed']} failed \u00b7 {t['hosts_unreachable']} unreachable"
    if note not in text:
        fail(f"the page does not say {note!r}")
    want, got = sorted(expected_rows(r)), sorted(shown_rows(pg))
    if want != got:
        fail(f"the ports table shows {got}, report.json has {want}")
    for h in r["hosts"]:
        if h["status"] != "ok" and " ".join(h["msg"].split()) not in text:
            fail(f"the page does not show why {h['host']} is {h['status']}: {h['msg']!r}")
    total = len(want)
    if pg.count != f"{total} of {total} rows":
        fail(f"the count reads {pg.count!r}, not '{total} of {total} rows': the page's script did not run")
    print(f"{len(got)} rows, cards {pg.cards}, count {pg.count!r}")


def cmd_dom_filter(dom, report, name, after):
    r, pg = load(report), page(dom)
    want = sorted(x for x in expected_rows(r) if x[0] == name and len(x) == 6 and x[5] == after)
    got = sorted(shown_rows(pg, visible_only=True))
    if not want or want != got:
        fail(f"filtered on {name} and after={after}, the page shows {got}; report.json has {want}")
    if pg.count != f"{len(want)} of {len(pg.rows)} rows":
        fail(f"the count reads {pg.count!r}, not '{len(want)} of {len(pg.rows)} rows'")
    print(f"{len(got)} of {len(pg.rows)} rows shown")


def cmd_md(md, report):
    r = load(report)
    with open(md, encoding="utf-8") as f:
        lines = f.read().splitlines()
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines if line.startswith("| ")]
    for x in expected_rows(r):
        if len(x) == 2:
            ok = any(c[:1] == [x[0]] and c[1:2] == [x[1]] for c in cells) and \
                any(len(c) == 9 and c[1] == x[0] and c[7].startswith(x[1]) for c in cells)
        else:
            h, fam, proto, on, now, after = x
            ok = any(len(c) == 9 and c[1:5] == [h, fam, proto, "`%s`" % on] and c[7] == now
                     and c[8].startswith(after) for c in cells)
        if not ok:
            fail(f"report.md has no row {x}")
    t = r["totals"]
    for want in (f"| published ports open to the internet | {t['now']['open']} | {t['after']['open']} |",
                 f"| drifted (a run would change them) | {t['hosts_drifted']} |"):
        if want not in lines:
            fail(f"report.md lacks {want!r}")


def cmd_png(path, width, height):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    if (w, h) != (int(width), int(height)):
        fail(f"{path} is {w}x{h}, not {width}x{height}")
    # Not blank: the image data of a page with text and colours compresses far less than a
    # plain page's.
    idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                    for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
    raw = zlib.decompress(idat)
    if len(set(raw[::97])) < 16:
        fail(f"{path} looks blank ({len(set(raw[::97]))} distinct sampled bytes)")
    print(f"{w}x{h}, {len(data)} bytes")


COMMANDS = {"status": cmd_status, "sync": cmd_sync, "backend": cmd_backend, "verdicts": cmd_verdicts,
            "named": cmd_named, "probes": cmd_probes, "totals": cmd_totals, "carried": cmd_carried,
            "checkmode": cmd_checkmode, "dom": cmd_dom, "dom-filter": cmd_dom_filter, "md": cmd_md,
            "png": cmd_png}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
