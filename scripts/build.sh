#!/usr/bin/env bash
# Builds the release binary as a static musl executable and checks that it is static: it is
# copied to every managed host, whatever its libc, and within 1 MiB: it is copied to a host whose
# cache lacks this build, and installed as the one-host command (issue 12). Prints the path of
# the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-x86_64-unknown-linux-musl}"
linker_var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER"
if [ "$target" = aarch64-unknown-linux-musl ] && [ -z "${!linker_var:-}" ]; then
    # No aarch64 cross gcc here: rust-lld links musl targets on its own.
    export "$linker_var"=rust-lld
fi
cargo build --quiet --release --target "$target" --bin ufw_docker
bin="target/$target/release/ufw_docker"
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    echo "build: $bin is dynamically linked; it must be static" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
if [ "$size" -gt 1048576 ]; then
    echo "build: $bin is $size bytes, over the 1 MiB (1048576 bytes) a release build may weigh" >&2
    exit 1
fi
echo "$bin"
