#!/usr/bin/env bash
# Installs what building and testing the module need on a fresh Debian or Ubuntu machine, as
# root: the firewall tools the tests drive for real, and the musl targets the static binary is
# built for. Idempotent and quiet when everything is already there.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: run as root (apt-get, network namespaces)" >&2
    exit 1
fi

packages=(iptables nftables ufw iproute2 conntrack procps util-linux kmod ca-certificates file)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for target in x86_64-unknown-linux-musl "$@"; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done
