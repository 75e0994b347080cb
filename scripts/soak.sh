#!/usr/bin/env bash
# soak.sh: `make soak`. The soak of issue 14 (tests/soak.rs): a Docker host of the bed, Docker
# 28 then Docker 20.10, kept busy (containers and networks churned, dockerd restarted, the
# module rerun with a changing policy, `ufw reload`) while real packets probe its allowed and
# blocked ports without pause. A measurement, not part of `make test`; it fails when a goal is
# missed: a blocked port that connected, an allowed port refused during a module run, bytes of
# after.rules lost.
#
# Writes target/soak.md (the figures and every event behind a miss) and puts its figures in
# BENCHMARKS.md's section 5 ("5. The soak"), which `make bench` keeps; the sections after it
# stay as they are.
#
# usage (as root): scripts/soak.sh    env: SOAK_SECONDS (per Docker version, default 90),
#   SOAK_DOCKER (default 28,20), SOAK_SEED (the policies' sequence; default from the clock)
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "soak.sh: run as root (network namespaces, iptables, dockerd)" >&2; exit 1; }

scripts/deps.sh
tests/bed/install-deps.sh

rm -f target/soak.md target/soak-benchmarks.md
rc=0
cargo test --test soak -- --ignored --nocapture --test-threads=1 || rc=$?

# The figures go into BENCHMARKS.md whatever the verdict: a miss is a figure too.
if [[ -s target/soak-benchmarks.md ]]; then
    {
        # Everything before the section, without its trailing blank lines; then the section;
        # then the sections after it (make bench's section 6), as they were.
        awk '/^## 5\. The soak/ {exit} {print}' BENCHMARKS.md | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
        echo
        cat target/soak-benchmarks.md
        after=$(awk '/^## 5\. The soak/ {s = 1; next} s && /^## / {p = 1} p' BENCHMARKS.md)
        if [[ -n $after ]]; then printf '\n%s\n' "$after"; fi
    } >BENCHMARKS.md.tmp
    mv BENCHMARKS.md.tmp BENCHMARKS.md
    echo "soak.sh: wrote target/soak.md and BENCHMARKS.md's section 5" >&2
fi
exit $rc
