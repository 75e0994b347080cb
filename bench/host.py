#!/usr/bin/python3
"""Parts 1, 2 and 4 of `make bench` on one host: runs INSIDE a bench namespace that
scripts/bench.sh made (its own /etc/ufw, UFW enabled, Docker's chains, iptables pinned).

Why it exists: the module's cost on a host is process spawns and kernel round trips, so it is
measured the way Ansible runs it (the release binary with an args file), next to the least any
tool must do for the same job (the floor: one iptables-save per family, plus one
iptables-restore --noflush per family when something changes) and next to `ufw reload`, all
interleaved in the same loop so that load from elsewhere on the machine hits every figure
alike. The floor's payloads are the module's own: everything it piped into iptables-restore for
the same change (DOCKER-USER's chains in the filter table and the guard's in the security
table: one restore per family carries both), recorded once before the timed loop
(`applied_payloads`), never rebuilt here.
Prints one JSON object.

usage: ip netns exec NS bench/host.py BIN REPS [SCALE_REPS]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
REPS = int(sys.argv[2])
SCALE_REPS = int(sys.argv[3]) if len(sys.argv) > 3 else max(3, REPS // 4)
WORK = tempfile.mkdtemp(prefix="host-", dir=os.environ.get("BENCH_WORK"))  # removed by bench.sh
FILES = {"after_rules": "/etc/ufw/after.rules", "after6_rules": "/etc/ufw/after6.rules"}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policies import host_policy, scale_policy  # noqa: E402


def run(cmd, stdin=None):
    """Runs cmd, returns (seconds, stdout)."""
    t = time.perf_counter()
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"bench: {cmd} failed ({out.returncode}): {out.stderr}{out.stdout}")
    return dt, out.stdout


def module(args, expect_changed):
    path = os.path.join(WORK, "args.json")
    with open(path, "w") as f:
        json.dump({**FILES, **args}, f)
    dt, out = run([BIN, path])
    res = json.loads(out)
    if res.get("failed") or res["changed"] != expect_changed:
        raise SystemExit(f"bench: module run changed={res.get('changed')} != {expect_changed}: {res.get('msg')}")
    return dt, res


def applied_payloads(args):
    """Applies `args` (a change) with the module and returns the `--noflush` payloads it loaded,
    IPv4 and IPv6, byte for byte as it piped them into iptables-restore and ip6tables-restore:
    per family, every load of the run one after the other, which one iptables-restore takes as
    one input (a change is one load per family: the guard's security table, then the filter
    table).

    The module runs /usr/sbin/iptables-restore, a link through /etc/alternatives, which in the
    bench namespace is its own (/etc/netns/NS/alternatives, the pinned backend). For this one
    run, each tool's alternative points at a script that records its stdin and hands it on to the
    pinned tool; the `--test` loads of `validate: true` are handed on unrecorded. The links are
    put back before the timed loop, so no timed run goes through the script."""
    recorded, pinned = [], {}
    try:
        for tool in ("iptables-restore", "ip6tables-restore"):
            link = os.path.join("/etc/alternatives", tool)
            real = os.readlink(link)
            pinned[link] = real
            payload = os.path.join(WORK, f"{tool}.payload")
            script = os.path.join(WORK, f"{tool}.record")
            with open(script, "w") as f:
                f.write("#!/bin/sh\n"
                        f'case " $* " in *" --test "*) exec {real} "$@" ;; esac\n'
                        f'/usr/bin/tee -a {payload} | {real} "$@"\n')
            os.chmod(script, 0o755)
            os.remove(link)
            os.symlink(script, link)
            recorded.append(payload)
        module(args, True)
    finally:
        for link, real in pinned.items():
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(real, link)
    payloads = []
    for path in recorded:
        if not os.path.exists(path):
            raise SystemExit(f"bench: the module changed the policy without loading {path}")
        with open(path) as f:
            payloads.append(f.read())
        os.remove(path)
    return payloads


def restore(payloads):
    t = 0.0
    for tool, p in zip(("iptables", "ip6tables"), payloads):
        t += run([f"{tool}-restore", "-w", "30", "--noflush"], stdin=p)[0]
    return t


def filter_only(payload):
    """The filter table's part of a recorded payload (without the guard's security table)."""
    tables = payload.split("COMMIT\n")
    return "".join(t + "COMMIT\n" for t in tables if t.lstrip().startswith("*filter"))


def floor(payloads=None):
    """One iptables-save per family, and one iptables-restore --noflush per family of
    `payloads` when given: the least any tool reads and writes for the same job."""
    t = 0.0
    for tool in ("iptables", "ip6tables"):
        t += run([f"{tool}-save"])[0]
    if payloads:
        t += restore(payloads)
    return t


def stats(xs):
    xs = sorted(x * 1000 for x in xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}


def peak_rss(args):
    path = os.path.join(WORK, "rss.json")
    with open(path, "w") as f:
        json.dump({**FILES, **args}, f)
    out = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, path], capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])  # KiB


def part1():
    a, b = host_policy(0), host_policy(1)
    module(a, True)
    module(a, False)
    # payloads[k]: what the module loads to go from the other policy to policy k.
    payloads = {1: applied_payloads(b)}
    module(b, False)
    payloads[0] = applied_payloads(a)
    module(a, False)
    for k in (0, 1):
        if not all("*security" in p and "*filter" in p for p in payloads[k]):
            raise SystemExit("bench: a change did not load both the filter and security tables")
    m = {"noop": [], "floor_noop": [], "change": [], "change_unvalidated": [],
         "floor_change": [], "floor_change_filter": [], "ufw_reload": []}
    cur = 0  # policy 'a' is applied
    for _ in range(REPS):
        m["noop"].append(module((a, b)[cur], False)[0])
        m["floor_noop"].append(floor())
        nxt = 1 - cur
        m["change"].append(module((a, b)[nxt], True)[0])
        cur = nxt
        # The same change without the `iptables-restore --test` of each file's rules
        # (validate: false), to show what that safety step costs.
        nxt = 1 - cur
        m["change_unvalidated"].append(module({**(a, b)[nxt], "validate": False}, True)[0])
        cur = nxt
        # The floor changes the policy too (to the other one), then, untimed, back.
        m["floor_change"].append(floor(payloads[1 - cur]))
        restore(payloads[cur])
        # The same floor without the guard's security table: what the guard's transactions cost.
        m["floor_change_filter"].append(floor([filter_only(p) for p in payloads[1 - cur]]))
        restore(payloads[cur])
        m["ufw_reload"].append(run(["ufw", "reload"])[0])
    return {k: stats(v) for k, v in m.items()}


def part2():
    rows = []
    for n in (10, 100, 1000):
        pol = scale_policy(n)
        applies, noops = [], []
        for _ in range(SCALE_REPS):
            module({"state": "absent"}, True)
            applies.append(module(pol, True)[0])
            noops.append(module(pol, False)[0])
        res = module(pol, False)[1]
        rss_noop = peak_rss(pol)
        rows.append({
            "n": n,
            "apply": stats(applies),
            "noop": stats(noops),
            "rules": {f: len(res["rules"][f]) for f in ("ipv4", "ipv6")},
            "chains": len(res["chains"]),
            "peak_rss_kib_noop": rss_noop,
        })
    # Peak memory of a change at the largest size.
    module({"state": "absent"}, True)
    rows[-1]["peak_rss_kib_apply"] = peak_rss(scale_policy(1000))
    module({"state": "absent"}, True)
    module({"state": "absent"}, False)
    return rows


def main():
    out = {"part1": part1(), "part2": part2()}  # part2 leaves the policy absent
    print(json.dumps(out))


if __name__ == "__main__":
    main()
