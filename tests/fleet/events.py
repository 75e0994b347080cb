#!/usr/bin/env python3
"""Checks on a run's results, read from the JSON lines of callback_plugins/fleet_events.py.

Why it exists: the fleet test and the unit test check what each host's tasks returned; these are
those checks, on the results as Ansible holds them, not on the text it prints for people. Each
command exits 0 when the check holds; otherwise it says what it found on stderr and exits 1.
TASK is a task name or a unique part of one; with several results for a host, the last counts.

usage:
  events.py EVENTS status HOST TASK STATUS [ignored]   the host's result has STATUS (ok, changed,
                                                       failed, unreachable, skipped), and was
                                                       ignored (ignore_errors) when asked
  events.py EVENTS msg HOST TASK REGEX                 its msg matches REGEX (re.search)
  events.py EVENTS diff HOST TASK REGEX                one of its diff entries (headers or text)
                                                       matches REGEX
  events.py EVENTS batches TASK                        prints the hosts that ran TASK, one JSON
                                                       list per start of the task (batches)
  events.py EVENTS stopped                             the play ran out of hosts (a batch failed)
  events.py EVENTS table HOST PATTERN...               the role's exposure table for HOST has a
                                                       row matching each PATTERN (re.match)
"""

from __future__ import annotations

import json
import re
import sys

TABLE_TASK = "Show what the internet reaches now and after this run."


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def results(events: list[dict], host: str, task: str) -> list[dict]:
    return [e for e in events if e["event"] == "result" and e["host"] == host and task in e["task"]]


def last(events: list[dict], host: str, task: str) -> dict:
    found = results(events, host, task)
    if not found:
        fail(f"no result of a task '{task}' for {host}; tasks run: "
             f"{sorted({e['name'] for e in events if e['event'] == 'task'})}")
    return found[-1]


def fail(what: str):
    print(f"events: {what}", file=sys.stderr)
    sys.exit(1)


def check_status(events, host, task, status, *ignored):
    r = last(events, host, task)
    want_ignored = ignored == ("ignored",)
    if r["status"] != status or r["ignored"] != want_ignored:
        fail(f"{host} '{r['task']}': {r['status']}{' (ignored)' if r['ignored'] else ''}, expected "
             f"{status}{' (ignored)' if want_ignored else ''}: {json.dumps(r['result'])[:2000]}")


def check_msg(events, host, task, regex):
    r = last(events, host, task)
    if not re.search(regex, str(r["result"].get("msg", ""))):
        fail(f"{host} '{r['task']}': msg {r['result'].get('msg')!r} does not match {regex!r}")


def check_diff(events, host, task, regex):
    r = last(events, host, task)
    diffs = r["result"].get("diff") or []
    if isinstance(diffs, dict):
        diffs = [diffs]
    texts = [str(v) for d in diffs for v in d.values()]
    if not any(re.search(regex, t, re.M) for t in texts):
        fail(f"{host} '{r['task']}': no diff entry matches {regex!r}: {json.dumps(diffs)[:2000]}")


def show_batches(events, task):
    starts = [e["n"] for e in events if e["event"] == "task" and task in e["name"]]
    batches = [sorted({e["host"] for e in events if e["event"] == "result" and e["n"] == n})
               for n in starts]
    print(json.dumps(batches))


def check_stopped(events):
    if not any(e["event"] == "no_hosts_remaining" for e in events):
        fail("the run never ran out of hosts")


def check_table(events, host, *patterns):
    r = last(events, host, TABLE_TASK)
    rows = r["result"].get("msg") or []
    missing = [p for p in patterns if not any(re.match(p, row) for row in rows)]
    if missing:
        fail(f"{host}'s exposure table has no row matching {missing}: " + "\n".join(rows))


COMMANDS = {
    "status": check_status,
    "msg": check_msg,
    "diff": check_diff,
    "batches": show_batches,
    "stopped": check_stopped,
    "table": check_table,
}


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[2] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    COMMANDS[sys.argv[2]](load(sys.argv[1]), *sys.argv[3:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
