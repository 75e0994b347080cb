#!/usr/bin/env bash
# The project's test command (`make test`, called by .ci/run): lint, the static release build,
# the unit tests, the integration tests against real iptables, UFW and Docker in network
# namespaces, and the Ansible role (scripts/test-role.sh: lint, collection, molecule, fleet). It
# needs root and never skips: a machine where namespaces cannot be created fails here, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "make test: the tests create network namespaces and run iptables; run as root" >&2
    exit 1
fi

step "installing dependencies"
scripts/deps.sh
tests/bed/install-deps.sh

probe="ufwd-probe-$$"
if ! ip netns add "$probe"; then
    echo "make test: cannot create a network namespace here (ip netns add failed); the" >&2
    echo "namespace tests cannot run, and they are never skipped" >&2
    exit 1
fi
ip netns del "$probe"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings

step "licenses, bans and sources of the release binary's crates (cargo-deny)"
scripts/licenses.sh

step "static release build"
scripts/build.sh

step "unit tests, and the module against real iptables and UFW in namespaces"
cargo test --lib --bins --test tests -- --test-threads="$(nproc)"

step "make bench's planning half (examples/bench_plan) on 10 and 100 entries: it plans, and the applied table plans as a no-op"
# bench_plan runs otherwise only from make bench, and a change of what the module applies (the
# guard's security table) once broke its no-op rerun unnoticed. It asserts that itself; here its
# JSON must hold the figures make bench reads.
plan_dir=$(mktemp -d)
for n in 10 100; do
    python3 bench/policies.py scale "$n" >"$plan_dir/args.json"
    cargo run --quiet --example bench_plan -- "$plan_dir/args.json" 1 >"$plan_dir/plan.json"
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
missing = {"plan_first_ms", "plan_rerun_ms", "crossed", "rules"} - set(j)
sys.exit("bench_plan: missing %s" % sorted(missing) if missing else 0)' "$plan_dir/plan.json"
done
rm -rf "$plan_dir"

step "the test bed: Docker 20.10 and 28, nft and legacy, probed by real packets"
# A failing case prints its whole probe table; `cargo test --test bed -- --nocapture` shows
# the tables of passing cases too.
cargo test --test bed

step "the Ansible role: lint, collection, molecule, fleet rollout"
scripts/test-role.sh

step "nothing left behind"
scripts/leftovers.sh
