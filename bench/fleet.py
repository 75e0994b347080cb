#!/usr/bin/python3
"""Part 3 of `make bench`: the ufw_docker role against a builtin-modules baseline role, over
SSH, on the same 10 and 25 namespace hosts with the same forks, in one run; and the role and the
module alone on 100 hosts (the baseline, whose `ufw reload` takes seconds a host, only up to
FLEET_BASELINE_MAX hosts, 25 by default), for the time per host as the fleet grows.

Why it exists: on a fleet, what an operator waits for is ansible-playbook's wall time, which
is mostly SSH round trips and what each task copies to each host. Both roles carry the same
rules (the baseline's block is the module's own rendering), start from the same stock hosts
with UFW enabled, and take turns going first in each repetition. Timed: the first apply
(from stock files, empty chains and, for ours, no build in the host's cache) and the no-op rerun
right after it. A third playbook runs
the module alone (bench/fleet-module.yml), to tell the module's cost from the role's. Each run
also reports the controller's CPU time: ansible-playbook and everything it starts (its forks,
ssh and ssh's ControlPersist masters) run in a cpuacct cgroup of their own (`Controller`).

usage: bench/fleet.py REPO HOSTS_DIR REPS FORKS   (as root, the venv's bin first on PATH;
HOSTS_DIR made by tests/fleet/hosts.sh create N, N at least the largest of FLEET_SIZES, default
"10 25 100"). Prints one JSON object.
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
    """Runs script on host ns as an SSH session there sees it (its /etc/ufw, its own /etc and
    /usr/local, where the role installs the command and the policy file)."""
    out = subprocess.run([os.path.join(REPO, "tests/fleet/hosts.sh"), "enter", HOSTS_DIR, ns,
                          "sh", "-c", script], capture_output=True, text=True)
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
rm -rf /usr/local/sbin/ufw_docker /etc/ufw-docker
for t in iptables ip6tables; do
    chains=$($t-save -t filter | sed -n 's/^:\(DOCKER-USER\|ufw-docker-[^ ]*\) .*/\1/p')
    for c in $chains; do $t -F "$c"; done
    for c in $chains; do $t -X "$c"; done
    # The guard: its jump in the security table's FORWARD, then its chains.
    while $t -t security -D FORWARD -j ufw-docker-guard 2>/dev/null; do :; done
    chains=$($t-save -t security | sed -n 's/^:\(ufw-docker-[^ ]*\) .*/\1/p')
    for c in $chains; do $t -t security -F "$c"; done
    for c in $chains; do $t -t security -X "$c"; done
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


class Controller:
    """A cgroup for ansible-playbook and every process it starts, whose CPU time (user and
    system, nanoseconds) the kernel keeps: cgroup v1's cpuacct here, v2's cpu.stat elsewhere.
    The sshds and the module on the hosts run in the hosts' own processes, outside it."""

    def __init__(self):
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        name = f"ufwd-bench-{os.getpid()}"
        if os.path.exists(v2):
            self.path, self.v2 = f"/sys/fs/cgroup/{name}", True
        else:
            self.path, self.v2 = f"/sys/fs/cgroup/cpuacct/{name}", False
        os.mkdir(self.path)

    def cpu_ns(self):
        if self.v2:
            with open(f"{self.path}/cpu.stat") as f:
                usec = dict(l.split() for l in f)["usage_usec"]
            return int(usec) * 1000
        with open(f"{self.path}/cpuacct.usage") as f:
            return int(f.read())

    def wrap(self, cmd):
        """cmd, started inside the cgroup (the shell joins it, then execs cmd)."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *cmd]

    def close(self):
        # ssh's ControlPersist masters may outlive the playbook for a while: they are moved to
        # the parent cgroup, so that this one can go.
        root = os.path.dirname(self.path)
        with open(f"{self.path}/cgroup.procs") as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(f"{root}/cgroup.procs", "w") as f:
                    f.write(pid)
            except OSError:
                pass
        os.rmdir(self.path)


CONTROLLER = None


def playbook(name, n):
    env = {**os.environ, "ANSIBLE_FORKS": str(FORKS), "ANSIBLE_ROLES_PATH": BENCH,
           "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    cmd = ["ansible-playbook", "-i", os.path.join(HOSTS_DIR, "inventory.ini"),
           "-l", f"fleet[0:{n - 1}]", os.path.join(BENCH, f"fleet-{name}.yml"),
           "-e", f"@{WORK}/vars-{name}.json"]
    cpu = CONTROLLER.cpu_ns()
    t = time.perf_counter()
    out = subprocess.run(CONTROLLER.wrap(cmd), capture_output=True, text=True, cwd=WORK, env=env)
    dt = time.perf_counter() - t
    cpu = (CONTROLLER.cpu_ns() - cpu) / 1e9
    log = os.path.join(WORK, f"{name}-{n}.log")
    with open(log, "a") as f:
        f.write(out.stdout + out.stderr)
    recap = re.findall(r"^(h\d+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out.stdout, re.M)
    if out.returncode != 0 or len(recap) != n or any(int(u) or int(f) for _, _, _, u, f in recap):
        raise SystemExit(f"fleet: {name} on {n} hosts failed (rc={out.returncode}); see {log}")
    return dt, cpu, sum(int(c) for _, _, c, _, _ in recap)


def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}


def main():
    global CONTROLLER
    CONTROLLER = Controller()
    try:
        run_all()
    finally:
        CONTROLLER.close()


def run_all():
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
    baseline_max = int(os.environ.get("FLEET_BASELINE_MAX", "25"))
    for n in [int(s) for s in os.environ.get("FLEET_SIZES", "10 25 100").split()]:
        if n > len(HOSTS):
            raise SystemExit(f"fleet: {n} hosts asked for, {HOSTS_DIR} has {len(HOSTS)}")
        hosts = HOSTS[:n]
        roles = ("ours", "baseline", "module") if n <= baseline_max else ("ours", "module")
        m = {f"{r}_{p}{c}": [] for r in roles for p in ("first", "noop") for c in ("", "_cpu")}
        for rep in range(REPS):
            order = roles[rep % len(roles):] + roles[:rep % len(roles)]
            for role in order:
                each(RESET, hosts)
                for ns in hosts:  # a first apply finds no cached build either
                    shutil.rmtree(os.path.join(HOSTS_DIR, ns, "var-cache", "ufw-docker"), ignore_errors=True)
                dt, cpu, changed = playbook(role, n)
                if changed < n:
                    raise SystemExit(f"fleet: {role}'s first apply changed {changed} tasks on {n} hosts")
                m[f"{role}_first"].append(dt)
                m[f"{role}_first_cpu"].append(cpu)
                dt, cpu, changed = playbook(role, n)
                if changed:
                    raise SystemExit(f"fleet: {role}'s rerun changed {changed} tasks: not a no-op")
                m[f"{role}_noop"].append(dt)
                m[f"{role}_noop_cpu"].append(cpu)
        out["sizes"].append({"hosts": n, **{k: stats(v) for k, v in m.items()}})
    each(RESET)
    shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
