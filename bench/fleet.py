#!/usr/bin/python3
"""Part 3 of `make bench`: the ufw_docker role against a builtin-modules baseline role, over
SSH, on the same 10 and 25 namespace hosts with the same forks, in one run.

Why it exists: on a fleet, what an operator waits for is ansible-playbook's wall time, which
is mostly SSH round trips and what each task copies to each host. Both roles carry the same
rules (the baseline's block is the module's own rendering), start from the same stock hosts
with UFW enabled, and take turns going first in each repetition. Timed: the first apply
(from stock files, empty chains and, for ours, no build in the host's cache) and the no-op rerun
right after it. A third playbook runs
the module alone (bench/fleet-module.yml), to tell the module's cost from the role's.

usage: bench/fleet.py REPO HOSTS_DIR REPS FORKS   (as root, the venv's bin first on PATH;
HOSTS_DIR made by tests/fleet/hosts.sh create 25). Prints one JSON object.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO, HOSTS_DIR, REPS, FORKS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BENCH = os.path.join(REPO, "bench")
sys.path.insert(0, BENCH)
from policies import host_policy  # noqa: E402

# Under scripts/bench.sh's results directory (BENCH_WORK), which its teardown removes even when
# a run fails here; the playbook logs stay there until then.
WORK = tempfile.mkdtemp(prefix="fleet-", dir=os.environ.get("BENCH_WORK"))
HOSTS = open(os.path.join(HOSTS_DIR, "hosts")).read().split()
BIN = os.path.join(REPO, "ansible/binaries/ufw_docker-x86_64")


def on(ns, script):
    out = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"fleet: on {ns}: {script}: {out.stderr}")
    return out.stdout


def each(script, hosts=HOSTS, workers=8):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda ns: on(ns, script), hosts))


# UFW's stock default already denies incoming (each host's own copy of /etc/default/ufw, never
# written here). One host at a time: ufw takes a global lock.
ENABLE_UFW = "ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null"
RESET = r"""
cp /usr/share/ufw/iptables/after.rules /usr/share/ufw/iptables/after6.rules /etc/ufw/
for t in iptables ip6tables; do
    chains=$($t-save -t filter | sed -n 's/^:\(DOCKER-USER\|ufw-docker-[^ ]*\) .*/\1/p')
    for c in $chains; do $t -F "$c"; done
    for c in $chains; do $t -X "$c"; done
done
"""


def module_block(family_file):
    """The body of the module's block for the policy: the rules the baseline carries."""
    scratch = os.path.join(WORK, "render")
    os.makedirs(scratch, exist_ok=True)
    for f in ("after.rules", "after6.rules"):
        shutil.copy(f"/usr/share/ufw/iptables/{f}", scratch)
    args = {**host_policy(0), "apply": "none",
            "after_rules": f"{scratch}/after.rules", "after6_rules": f"{scratch}/after6.rules"}
    with open(f"{scratch}/args.json", "w") as f:
        json.dump(args, f)
    subprocess.run([BIN, f"{scratch}/args.json"], check=True, capture_output=True)
    text = open(f"{scratch}/{family_file}").read()
    body = text.split("# BEGIN UFW-DOCKER MANAGED BLOCK", 1)[1].split("\n", 1)[1]
    body = body.split("# END UFW-DOCKER MANAGED BLOCK", 1)[0]
    return "\n".join(l for l in body.splitlines() if not l.startswith("#"))


def playbook(name, n):
    env = {**os.environ, "ANSIBLE_FORKS": str(FORKS), "ANSIBLE_ROLES_PATH": BENCH,
           "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    cmd = ["ansible-playbook", "-i", os.path.join(HOSTS_DIR, "inventory.ini"),
           "-l", f"fleet[0:{n - 1}]", os.path.join(BENCH, f"fleet-{name}.yml"),
           "-e", f"@{WORK}/vars-{name}.json"]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=WORK, env=env)
    dt = time.perf_counter() - t
    log = os.path.join(WORK, f"{name}-{n}.log")
    with open(log, "a") as f:
        f.write(out.stdout + out.stderr)
    recap = re.findall(r"^(h\d+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out.stdout, re.M)
    if out.returncode != 0 or len(recap) != n or any(int(u) or int(f) for _, _, _, u, f in recap):
        raise SystemExit(f"fleet: {name} on {n} hosts failed (rc={out.returncode}); see {log}")
    return dt, sum(int(c) for _, _, c, _, _ in recap)


def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}


def main():
    pol = host_policy(0)
    with open(f"{WORK}/vars-ours.json", "w") as f:
        json.dump({"ufw_docker_allow": pol["allow"],
                   "ufw_docker_trusted_networks": pol["trusted_networks"]}, f)
    shutil.copy(f"{WORK}/vars-ours.json", f"{WORK}/vars-module.json")
    with open(f"{WORK}/vars-baseline.json", "w") as f:
        json.dump({"baseline_block_v4": module_block("after.rules"),
                   "baseline_block_v6": module_block("after6.rules")}, f)
    each(ENABLE_UFW, workers=1)
    out = {"forks": FORKS, "reps": REPS, "sizes": []}
    for n in [int(s) for s in os.environ.get("FLEET_SIZES", "10 25").split()]:
        hosts = HOSTS[:n]
        roles = ("ours", "baseline", "module")
        m = {f"{r}_{p}": [] for r in roles for p in ("first", "noop")}
        for rep in range(REPS):
            order = roles[rep % 3:] + roles[:rep % 3]
            for role in order:
                each(RESET, hosts)
                for ns in hosts:  # a first apply finds no cached build either
                    shutil.rmtree(os.path.join(HOSTS_DIR, ns, "var-cache", "ufw-docker"), ignore_errors=True)
                dt, changed = playbook(role, n)
                if changed < n:
                    raise SystemExit(f"fleet: {role}'s first apply changed {changed} tasks on {n} hosts")
                m[f"{role}_first"].append(dt)
                dt, changed = playbook(role, n)
                if changed:
                    raise SystemExit(f"fleet: {role}'s rerun changed {changed} tasks: not a no-op")
                m[f"{role}_noop"].append(dt)
        out["sizes"].append({"hosts": n, **{k: stats(v) for k, v in m.items()}})
    each(RESET)
    shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
