#!/usr/bin/python3
"""Part 2's proof: the rules a new connection crosses in DOCKER-USER, counted by the kernel.

Why it exists: "rules crossed" from a model of our own chains (evaluator::evaluate) could agree
with itself and be wrong. Here real packets go through a router namespace that holds the module's
chains: a client namespace sends one SYN to a port the router DNATs to a "container" namespace
behind an interface named docker0, and the router's per-rule packet counters say which rule of
each chain matched. A chain is walked in order, so the position of the rule that ended the
packet's stay in a chain is the number of rules it crossed there; their sum over DOCKER-USER and
the module's sub-chains is the figure. The same packets go through evaluator::evaluate
(bench_plan's probe mode) so the table shows the model and the kernel side by side.

usage: bench/packets.py BIN BENCH_PLAN NETNS_SH BACKEND  (as root; prints one JSON object)
Every namespace it makes is deleted before it exits. Traffic stays between its namespaces, on
documentation addresses.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policies import scale_policy  # noqa: E402

BIN, BENCH_PLAN, NETNS_SH, BACKEND = sys.argv[1:5]
TAG = "%x" % (os.getpid() & 0xFFFF)
R, C, K = f"ufwbr{TAG}", f"ufwbc{TAG}", f"ufwbk{TAG}"
WORK = tempfile.mkdtemp(prefix="packets-", dir=os.environ.get("BENCH_WORK"))  # removed by bench.sh


def sh(*cmd, ns=None, check=True, stdin=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    out = subprocess.run(full, capture_output=True, text=True, input=stdin)
    if check and out.returncode != 0:
        raise SystemExit(f"packets: {full} failed: {out.stderr}")
    return out.stdout


def setup():
    subprocess.run([NETNS_SH, "up", R, BACKEND], check=True)
    for ns in (C, K):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    # client <-> router (eth0), router (docker0) <-> container
    sh("ip", "link", "add", "eth0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", C)
    sh("ip", "link", "add", "docker0", "netns", R, "type", "veth", "peer", "name", "eth0", "netns", K)
    for ns, dev, v4, v6 in ((R, "eth0", "203.0.113.1/24", "2001:db8:1::1/64"),
                            (C, "eth0", "203.0.113.2/24", "2001:db8:1::2/64"),
                            (R, "docker0", "198.51.100.1/24", "2001:db8:2::1/64"),
                            (K, "eth0", "198.51.100.2/24", "2001:db8:2::2/64")):
        sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
        sh("ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", C, "route", "add", "default", "via", "203.0.113.1")
    sh("ip", "-n", C, "-6", "route", "add", "default", "via", "2001:db8:1::1")
    sh("ip", "-n", K, "route", "add", "default", "via", "198.51.100.1")
    sh("ip", "-n", K, "-6", "route", "add", "default", "via", "2001:db8:2::1")
    # Trusted IPv6 sources live behind the client.
    sh("ip", "-n", R, "-6", "route", "add", "2001:db8:1000::/36", "via", "2001:db8:1::2")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", ns=R)
    # Docker's DNAT for every published port, to the container's port 80.
    for tool, to in (("iptables", "198.51.100.2:80"), ("ip6tables", "[2001:db8:2::2]:80")):
        sh(tool, "-t", "nat", "-A", "PREROUTING", "-i", "eth0", "-p", "tcp", "-j", "DNAT",
           "--to-destination", to, ns=R)


def teardown():
    subprocess.run([NETNS_SH, "down", R], check=False)
    for ns in (C, K):
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def apply(policy):
    path = os.path.join(WORK, "args.json")
    with open(path, "w") as f:
        json.dump({**policy, "after_rules": "/etc/ufw/after.rules",
                   "after6_rules": "/etc/ufw/after6.rules"}, f)
    res = json.loads(sh(BIN, path, ns=R))
    if res.get("failed"):
        raise SystemExit(f"packets: module failed: {res['msg']}")


def counted(family, src, port):
    """Sends one SYN; returns the rules it crossed in DOCKER-USER and the sub-chains."""
    tool = "iptables" if family == "ipv4" else "ip6tables"
    dst = "203.0.113.1" if family == "ipv4" else "2001:db8:1::1"
    sh(tool, "-Z", ns=R)
    py = ("import socket,sys\n"
          f"s=socket.socket(socket.AF_INET{'6' if family == 'ipv6' else ''}, socket.SOCK_STREAM)\n"
          f"s.bind(('{src}', 0)); s.settimeout(0.4)\n"
          f"try: s.connect(('{dst}', {port}))\nexcept OSError: pass\n")
    if family == "ipv6" and src != "2001:db8:1::2":
        sh("ip", "addr", "replace", f"{src}/128", "dev", "eth0", "nodad", ns=C)
    sh("python3", "-c", py, ns=C)
    save = sh(f"{tool}-save", "-c", "-t", "filter", ns=R)
    pos, last = {}, {}
    for line in save.splitlines():
        m = re.match(r"^\[(\d+):\d+\] -A (\S+) ", line)
        if not m:
            continue
        chain = m.group(2)
        if chain != "DOCKER-USER" and not chain.startswith(("ufw-docker-allow-", "ufw-docker-trust-", "ufw-docker-untrusted")):
            continue
        pos[chain] = pos.get(chain, 0) + 1
        if int(m.group(1)) > 0:
            last[chain] = pos[chain]
    return sum(last.values())


def probes(n):
    last = 20000 + 2 * (n - 1)
    trusted_src = "2001:db8:%x::5" % (0x1000 + 2 * (n - 1))
    return [
        ("ipv4", "203.0.113.2", last, "allowed, last entry"),
        ("ipv4", "203.0.113.2", last + 1, "blocked, after the last entry"),
        ("ipv6", "2001:db8:1::2", last, "allowed, last entry"),
        ("ipv6", "2001:db8:1::2", last + 1, "blocked, after the last entry"),
        ("ipv6", trusted_src, 1, "trusted source (last network), unpublished port"),
    ]


def model(policy, probe_list):
    args = os.path.join(WORK, "plan.json")
    with open(args, "w") as f:
        json.dump(policy, f)
    spec = os.path.join(WORK, "probes.json")
    with open(spec, "w") as f:
        json.dump([[fam, "tcp", src, port] for fam, src, port, _ in probe_list], f)
    out = subprocess.run([BENCH_PLAN, args, "1", spec], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["probe_crossed"]


def main():
    rows = []
    try:
        setup()
        for n in (10, 100, 1000):
            pol = scale_policy(n)
            apply(pol)
            pl = probes(n)
            modelled = model(pol, pl)
            for (fam, src, port, what), m in zip(pl, modelled):
                rows.append({"n": n, "family": fam, "packet": what, "port": port,
                             "kernel": counted(fam, src, port), "model": m})
    finally:
        teardown()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
