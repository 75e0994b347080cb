#!/usr/bin/env bash
# bench.sh: `make bench`. Measures the module and the role in network namespaces and writes
# BENCHMARKS.md. Not part of the tests: nothing here asserts a timing.
#
# Why it exists: the module is copied to and run on every host on every run, so its cost (and
# the role's) is what an operator pays across a fleet; these figures keep it honest. Every figure
# is the median of repeated runs with min and max, and every comparison is a ratio of figures
# measured side by side, interleaved, in the same run:
#   1. one host: a no-op run and a policy change against the floor (iptables-save per family,
#      plus iptables-restore --noflush per family for a change) and against `ufw reload`
#      (bench/host.py, inside a bench namespace made by bench/netns.sh);
#   2. scale: 10, 100 and 1000 allow entries and trusted networks: plan time (examples/
#      bench_plan.rs), apply time, and the rules a new connection crosses in DOCKER-USER, modelled
#      (evaluator::evaluate) and counted by the kernel with real packets (bench/packets.py);
#   3. the role over SSH on 10 and 25 namespace hosts (tests/fleet/hosts.sh) against a baseline
#      role of builtin modules (bench/baseline_role), same hosts, same forks, and the role and the
#      module alone on 100 hosts, with the controller's CPU time (bench/fleet.py);
#   4. the release binary's size and static linking, and the module's peak memory;
#   6. the fleet audit's report for 1000 hosts with 20 published ports each: the renderer alone,
#      and the playbook's report task inside ansible-playbook (bench/audit.py).
# (Section 5, the soak, is `make soak`'s: carried over as it is.)
#
# Everything runs in namespaces this script makes, on documentation addresses, and is torn down
# on exit. iptables is pinned per namespace (BENCH_IPTABLES), whatever the machine's
# alternatives are switched to meanwhile.
#
# usage (as root): scripts/bench.sh            env: BENCH_REPS (part 1, default 21),
#   BENCH_SCALE_REPS (part 2, default 5), BENCH_FLEET_REPS (part 3, default 3), BENCH_FORKS
#   (default 10), BENCH_IPTABLES (nft or legacy, default nft), BENCH_OUT (default BENCHMARKS.md),
#   BENCH_AUDIT_REPS (part 6's renderer, default 11), BENCH_AUDIT_PLAYBOOK_REPS (part 6's
#   playbook, default 3)
#                  scripts/bench.sh audit      part 6 alone (no namespaces, a few minutes):
#   replaces the section "## 6." of BENCH_OUT, keeping the other sections of their own runs
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

REPS=${BENCH_REPS:-21}
SCALE_REPS=${BENCH_SCALE_REPS:-5}
FLEET_REPS=${BENCH_FLEET_REPS:-3}
FORKS=${BENCH_FORKS:-10}
BACKEND=${BENCH_IPTABLES:-nft}
OUT=${BENCH_OUT:-BENCHMARKS.md}
AUDIT_REPS=${BENCH_AUDIT_REPS:-11}
AUDIT_PLAYBOOK_REPS=${BENCH_AUDIT_PLAYBOOK_REPS:-3}
say() { echo "bench: $*" >&2; }

bench_env() { # the run's environment, as bench/report.py reads it (env.json)
    echo "{\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"kernel\": \"$(uname -r)\","
    echo " \"cpus\": $(nproc), \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo " \"backend\": \"$BACKEND\", \"iptables\": \"$(/usr/sbin/iptables-$BACKEND --version)\","
    echo " \"ansible\": \"$("$VENV/bin/ansible-playbook" --version | head -1)\","
    echo " \"reps\": $REPS, \"scale_reps\": $SCALE_REPS, \"fleet_reps\": $FLEET_REPS, \"forks\": $FORKS}"
}
audit_part() { # RESULTS: part 6 into RESULTS/audit.json
    say "part 6: the fleet audit's report, 1000 hosts x 20 ports ($AUDIT_REPS renders, $AUDIT_PLAYBOOK_REPS playbook runs)"
    PATH=$VENV/bin:$PATH BENCH_WORK=$1 "$VENV/bin/python" bench/audit.py "$REPO" "$AUDIT_REPS" "$AUDIT_PLAYBOOK_REPS" >"$1/audit.json"
}

case ${1:-} in
"") ;;
audit)
    VENV=$(scripts/ansible-venv.sh -p)
    RESULTS=$(mktemp -d /tmp/ufwd-bench.XXXXXX)
    trap 'rm -rf "$RESULTS"' EXIT
    bench_env >"$RESULTS/env.json"
    audit_part "$RESULTS"
    python3 bench/report.py --audit "$RESULTS" "$OUT"
    say "replaced part 6 of $OUT"
    exit 0
    ;;
*) echo "usage: scripts/bench.sh [audit]" >&2; exit 2 ;;
esac

[[ $(id -u) == 0 ]] || { echo "bench.sh: run as root (network namespaces, iptables, sshd)" >&2; exit 1; }

# What it needs: the firewall tools and musl target, GNU time and file, the Ansible venv.
scripts/deps.sh aarch64-unknown-linux-musl >&2
scripts/apt-ensure.sh bench time file python3 openssh-client
VENV=$(scripts/ansible-venv.sh -p)

BIN=$REPO/$(scripts/build.sh)
cargo build --quiet --release --example bench_plan
PLAN=$REPO/target/release/examples/bench_plan
scripts/build-collection.sh --stage >/dev/null

RESULTS=$(mktemp -d /tmp/ufwd-bench.XXXXXX)
# The fleet's key lives below it, which each host's sshd reads as the login user `fleet`
# (tests/fleet/hosts.sh): others must get through (mktemp makes it 0700).
chmod 0755 "$RESULTS"
# Every helper keeps its scratch files here, removed on exit whatever happens.
export BENCH_WORK=$RESULTS
HOST=ufwbh$$
FLEET=$RESULTS/fleet
teardown() {
    local rc=$?
    bench/netns.sh down "$HOST" || true
    tests/fleet/hosts.sh destroy "$FLEET" >/dev/null 2>&1 || true
    rm -rf "$RESULTS"
    return $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

bench_env >"$RESULTS/env.json"

say "part 4: the release binary"
{
    echo "{\"bytes\": $(stat -c %s "$BIN"), \"file\": \"$(file -b "$BIN" | sed 's/"/\\"/g')\"}"
} >"$RESULTS/binary.json"

say "parts 1 and 2: one host ($REPS runs each), scale ($SCALE_REPS runs each)"
bench/netns.sh up "$HOST" "$BACKEND"
ip netns exec "$HOST" python3 bench/host.py "$BIN" "$REPS" "$SCALE_REPS" >"$RESULTS/host.json"
bench/netns.sh down "$HOST"

say "part 2: plan time and the modelled path"
for n in 10 100 1000; do
    python3 bench/policies.py scale "$n" >"$RESULTS/scale-$n.args.json"
    "$PLAN" "$RESULTS/scale-$n.args.json" 31 >"$RESULTS/plan-$n.json"
done
say "part 2: the path counted by the kernel"
python3 bench/packets.py "$BIN" "$PLAN" "$REPO/bench/netns.sh" "$BACKEND" >"$RESULTS/packets.json"

say "part 3: the role on 10, 25 and 100 SSH hosts ($FLEET_REPS runs each, forks $FORKS)"
net=
for candidate in 198.51.100 203.0.113; do
    if [[ -z $(ip -4 -o addr show to "$candidate.0/24") ]]; then net=$candidate; break; fi
done
[[ -n $net ]] || { echo "bench.sh: 203.0.113.0/24 and 198.51.100.0/24 are both in use (other fleets?)" >&2; exit 1; }
FLEET_NET=$net FLEET_IPTABLES=$BACKEND FLEET_NAME=ufb$(printf %04x $(($$ & 0xffff))) \
    tests/fleet/hosts.sh create 100 "$FLEET" >&2
PATH=$VENV/bin:$PATH python3 bench/fleet.py "$REPO" "$FLEET" "$FLEET_REPS" "$FORKS" >"$RESULTS/fleet.json"
tests/fleet/hosts.sh destroy "$FLEET" >&2

audit_part "$RESULTS"

# The soak's section (`make soak`, not rerun here) is carried over as it is, up to the next
# section.
awk '/^## 5\. The soak/ {p = 1; print; next} p && /^## / {p = 0} p' "$OUT" >"$RESULTS/soak.md" 2>/dev/null || true
python3 bench/report.py "$RESULTS" >"$OUT"
say "wrote $OUT"
