#!/usr/bin/python3
"""Part 6 of `make bench`: the fleet audit's report, rendered for 1000 hosts with 20 published
ports each.

Why it exists: the audit (ansible/playbooks/audit.yml) builds its report once, on the
controller, after every host answered; the issue asks that 1000 hosts with 20 published ports
each render in under 2 seconds. This measures, on synthetic results shaped as the module
returns them (every kind of port and name, a few failed and unreachable hosts besides the 1000):

  1. the renderer alone (plugins/plugin_utils/audit_report.py): the report built from the
     results, report.json, report.html and report.md rendered and written, REPS times;
  2. the report task as ansible-playbook runs it (the audit playbook's own last task, read from
     playbooks/audit.yml), after every host's result was registered as the audit's task
     registers it, PLAYBOOK_REPS times: the task's own time (from its start to its result,
     bench/callback_plugins/bench_task_time.py), and that of a task that only reads every
     host's result through hostvars as the report task does (Ansible's share of it).

Not a test: nothing here asserts a timing; bench/report.py states the target and whether it is
met.

usage: bench/audit.py REPO [REPS [PLAYBOOK_REPS]]   (the venv's bin first on PATH for part 2;
PLAYBOOK_REPS 0 skips it). Prints one JSON object.
"""

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(sys.argv[1])
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 11
PLAYBOOK_REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
HOSTS, PORTS, FAILED, UNREACHABLE = 1000, 20, 10, 5
sys.path.insert(0, os.path.join(REPO, "ansible", "plugins", "plugin_utils"))
import audit_report  # noqa: E402  (standard library only: imported from its file)

WORK = tempfile.mkdtemp(prefix="audit-", dir=os.environ.get("BENCH_WORK"))


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def synthetic():
    """HOSTS hosts with PORTS published entries each (ten ports, both families), as the module
    returns them, then FAILED failed and UNREACHABLE unreachable hosts. Deterministic."""
    rng = random.Random(13)
    reaches = ["open", "restricted", "blocked", "unknown"]
    results, names = {}, []
    for h in range(HOSTS):
        name = "docker-%04d.example.net" % h
        names.append(name)
        ports = []
        for i in range(PORTS // 2):
            now = rng.choices(reaches, weights=[6, 1, 3, 0.1])[0]
            after = rng.choices(reaches, weights=[2, 2, 6, 0.1])[0]
            project = "shop%d" % (i % 3)
            for family in ("ipv4", "ipv6"):
                v6 = family == "ipv6"
                p = {"family": family, "proto": "udp" if i % 7 == 6 else "tcp",
                     "host_port": str(8000 + i * 11), "container_port": str(80 + i),
                     "container_address": ("fd00:dead:beef::%x" % (i + 2)) if v6 else "172.18.0.%d" % (i + 2),
                     "bridge": "br-5f0c2a9d%04x" % h, "mode": "host", "now": now, "after": after,
                     "sources": ["198.51.100.0/24", "2001:db8:100::/48"] if after == "restricted" else [],
                     "trusted": ["10.20.0.0/16"], "container": "%s-svc%d-1" % (project, i),
                     "container_id": "%064x" % rng.getrandbits(256), "image": "registry.example/%s/svc%d:1.%d" % (project, i, h % 9),
                     "compose_project": project, "compose_service": "svc%d" % i}
                if i == 3 and not v6:
                    p["host_address"] = "192.0.2.%d" % (h % 250 + 1)
                ports.append(p)
        results[name] = {"changed": any(p["now"] != p["after"] for p in ports), "msg": "planned",
                         "published": ports, "unrecognised_dnat": [], "docker_firewall_backend": "iptables",
                         "warnings": ["DOCKER-USER is not the first rule of FORWARD (ipv6)"] if h % 50 == 0 else []}
    for h in range(FAILED):
        name = "broken-%02d.example.net" % h
        names.append(name)
        results[name] = {"failed": True, "changed": False, "docker_firewall_backend": "none",
                         "msg": "/etc/ufw/after.rules: line 31 opens a managed block that is never closed; "
                                "add the END marker or remove the BEGIN line by hand. Nothing was written."}
    for h in range(UNREACHABLE):
        name = "gone-%02d.example.net" % h
        names.append(name)
        results[name] = {"unreachable": True, "changed": False,
                         "msg": "Failed to connect to the host via ssh: ssh: connect to host %s port 22: "
                                "Connection timed out" % name}
    return names, results


def renderer(names, results):
    parts = {k: [] for k in ("build", "json", "html", "markdown", "total")}
    sizes = {}
    for rep in range(REPS):
        out = os.path.join(WORK, "render-%d" % rep)
        t0 = time.perf_counter()
        report = audit_report.build_report(results, hosts=names)
        t1 = time.perf_counter()
        paths = audit_report.write_report(report, out)
        t2 = time.perf_counter()
        parts["build"].append((t1 - t0) * 1000)
        parts["total"].append((t2 - t0) * 1000)
        for kind, _name, render in audit_report.FILES:
            t = time.perf_counter()
            render(report)
            parts[kind].append((time.perf_counter() - t) * 1000)
        sizes = {kind: os.path.getsize(path) for kind, path in paths.items()}
        shutil.rmtree(out)
    return {k: stats(v) for k, v in parts.items()}, sizes, report["totals"]


def report_task():
    """The report task of playbooks/audit.yml, as it is there."""
    import yaml  # the venv's PyYAML (part 2 runs with the venv's bin first on PATH)
    with open(os.path.join(REPO, "ansible", "playbooks", "audit.yml")) as f:
        play = yaml.safe_load(f)[0]
    task = [t for t in play["tasks"] if "ufw_docker.ufw_docker.audit_report" in t]
    if len(task) != 1:
        raise SystemExit("audit bench: playbooks/audit.yml has no single audit_report task")
    return play, task[0]


def playbook(names, results):
    """The report task inside ansible-playbook, after every host's result was registered as
    the audit's task registers it (bench/action_plugins/bench_audit_result.py returns the
    synthetic results, without a host to run on)."""
    play, task = report_task()
    inventory = os.path.join(WORK, "inventory.ini")
    with open(inventory, "w") as f:
        f.write("[fleet]\n" + "".join("%s ansible_connection=local ansible_python_interpreter=%s\n"
                                      % (n, sys.executable) for n in names))
    source = os.path.join(WORK, "results.json")
    with open(source, "w") as f:
        json.dump(results, f)
    collect = {"name": "Return each host's synthetic result, as the audit's module task would.",
               "bench_audit_result": {}, "check_mode": True, "ignore_errors": True,
               "ignore_unreachable": True, "register": "ufw_docker_audit_result"}
    gather = {"name": "Read every host's result through hostvars, as the report task does.",
              "bench_read_hostvars": {}, "run_once": True, "delegate_to": "localhost"}
    bench_play = os.path.join(WORK, "report.yml")
    with open(bench_play, "w") as f:
        json.dump([{"name": "The audit's results, then its report task.", "hosts": "all",
                    "gather_facts": False, "strategy": play.get("strategy", "linear"),
                    "tasks": [collect, gather, task]}], f)
    env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=os.path.join(REPO, "bench", "callback_plugins"),
               ANSIBLE_ACTION_PLUGINS=os.path.join(REPO, "bench", "action_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_task_time", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_FORKS="20", ANSIBLE_LOCALHOST_WARNING="False", BENCH_AUDIT_RESULTS=source)
    task_ms, gather_ms, wall = [], [], []
    for rep in range(PLAYBOOK_REPS):
        times = os.path.join(WORK, "times-%d.json" % rep)
        out = os.path.join(WORK, "out-%d" % rep)
        env["BENCH_TASK_TIMES"] = times
        t0 = time.perf_counter()
        run = subprocess.run(["ansible-playbook", "-i", inventory, bench_play, "-e",
                              json.dumps({"ufw_docker_audit_dir": out})],
                             cwd=WORK, env=env, capture_output=True, text=True)
        wall.append(time.perf_counter() - t0)
        if run.returncode != 0:
            raise SystemExit("audit bench: ansible-playbook failed:\n" + run.stdout[-3000:] + run.stderr[-3000:])
        with open(times) as f:
            timed = json.load(f)
        task_ms.append(timed[task["name"]] * 1000)
        gather_ms.append(timed[gather["name"]] * 1000)
        with open(os.path.join(out, "report.json")) as f:
            got = json.load(f)
        if len(got["hosts"]) != len(names) or got["totals"]["published"] != HOSTS * PORTS or \
                got["totals"]["hosts_unreachable"] != UNREACHABLE or got["totals"]["hosts_failed"] != FAILED:
            raise SystemExit("audit bench: the playbook's report is not the fleet's: %s" % got["totals"])
        shutil.rmtree(out)
    version = subprocess.run(["ansible-playbook", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"task_ms": stats(task_ms), "hostvars_ms": stats(gather_ms), "wall_s": stats(wall), "ansible": version}


def main():
    names, results = synthetic()
    rows = sum(len(r.get("published", [])) for r in results.values())
    times, sizes, totals = renderer(names, results)
    out = {"hosts": HOSTS, "ports_per_host": PORTS, "failed": FAILED, "unreachable": UNREACHABLE,
           "rows": rows, "reps": REPS, "python": sys.version.split()[0], "render_ms": times,
           "bytes": sizes, "totals": totals}
    if PLAYBOOK_REPS:
        out["playbook"] = playbook(names, results)
        out["playbook"]["reps"] = PLAYBOOK_REPS
    shutil.rmtree(WORK)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
