#!/usr/bin/env python3
"""Checks the exposure table the role printed for one host in an ansible-playbook log.

Why it exists: the fleet test and the unit test both read the table of the role's task "Show
what the internet reaches now and after this run." from a playbook's output and check its rows.
This finds that host's rows (the lines of its "msg" list) and exits 0 when every PATTERN (a
Python regex) matches one of them; otherwise it prints the task's output and exits 1.

usage: exposure-table.py LOG HOST PATTERN...
"""

import json
import re
import sys

TASK = "Show what the internet reaches now and after this run."


def rows(log: str, host: str) -> list[str] | None:
    """The table rows printed for `host`, or None when the log has none."""
    if TASK not in log:
        return None
    show = log.split(TASK, 1)[1].split("TASK [", 1)[0]
    found = re.search(r"^ok: \[" + re.escape(host) + r"\] => (\{.*?^\})$", show, re.M | re.S)
    return json.loads(found.group(1))["msg"] if found else None


def main() -> int:
    log_path, host, *patterns = sys.argv[1:]
    with open(log_path, encoding="utf-8") as f:
        log = f.read()
    table = rows(log, host)
    if table is not None and all(any(re.match(p, r) for r in table) for p in patterns):
        return 0
    print(f"exposure-table: {host}'s table does not hold rows matching {patterns}:", file=sys.stderr)
    print(log.split(TASK, 1)[1].split("TASK [", 1)[0] if TASK in log else "(no table)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
