#!/usr/bin/env bash
# Installs what building and testing the module need on a fresh Debian or Ubuntu machine, as
# root: the firewall tools the tests drive for real, and the musl targets the static binary is
# built for. Idempotent and quiet when everything is already there.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: run as root (apt-get, network namespaces)" >&2
    exit 1
fi

"$(dirname "$0")/apt-ensure.sh" deps iptables nftables ufw iproute2 conntrack procps util-linux kmod \
    ca-certificates file

for target in x86_64-unknown-linux-musl "$@"; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done
