#!/usr/bin/env bash
# Bounded fuzzing (`make fuzz`): each target runs for FUZZ_SECONDS (default 60) with libFuzzer
# through cargo-fuzz, built without a sanitizer so the stable toolchain can build it. Inputs that
# crash are copied to fuzz/regressions/<target>/, which `cargo test` replays for good.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -s none -O
status=0
for target in params after_rules; do
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus" "fuzz/regressions/$target"
    echo "== fuzzing $target for ${seconds}s"
    if ! cargo fuzz run -s none -O "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -artifact_prefix="target/fuzz-artifacts-$target-" -print_final_stats=1 2>&1 \
        | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|.*panicked)' ; then
        :
    fi
    for crash in target/fuzz-artifacts-"$target"-*; do
        [ -e "$crash" ] || continue
        cp "$crash" "fuzz/regressions/$target/"
        echo "fuzz: $target found $crash; kept in fuzz/regressions/$target/ (commit it with the fix)" >&2
        status=1
    done
done
exit $status
