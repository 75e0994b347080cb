#!/usr/bin/env bash
# netns.sh: one bench host in a network namespace, for bench/host.py and the packet counters.
#
# Why it exists: the module must be measured on a host with its own firewall, its own UFW
# (enabled, so `ufw reload` is the real thing) and Docker's chains in place, without touching
# the machine's own firewall or /etc/ufw. `ip netns exec NS` bind-mounts /etc/netns/NS/ufw over
# /etc/ufw, /etc/netns/NS/default over /etc/default and /etc/netns/NS/alternatives over
# /etc/alternatives, where iptables is pinned to one backend (tests/fleet/etc-netns.sh): the
# backend of a measurement is the namespace's, whatever the machine's alternatives say (the
# project's tests pin theirs the same way and never switch the machine's).
#
# usage: bench/netns.sh up NS nft|legacy   |   bench/netns.sh down NS
set -euo pipefail
# shellcheck source=tests/fleet/etc-netns.sh
. "$(dirname "$0")/../tests/fleet/etc-netns.sh"

die() { echo "netns.sh: $*" >&2; exit 1; }

up() {
    local ns=$1 backend=$2
    [[ $backend == nft || $backend == legacy ]] || die "backend must be nft or legacy"
    [[ ! -e /run/netns/$ns ]] || die "namespace $ns exists (down it first)"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    etc_netns "$ns" "$backend" # its own /etc/ufw, /etc/default, /etc/alternatives
    ip netns exec "$ns" sh -c '
        set -e
        [ "$(readlink /etc/alternatives/iptables)" = "/usr/sbin/iptables-'"$backend"'" ]
        # The stock default denies incoming (/etc/default/ufw: this host'"'"'s copy, only read).
        grep -q "^DEFAULT_INPUT_POLICY=\"DROP\"" /etc/default/ufw
        ufw allow 22/tcp >/dev/null
        ufw --force enable >/dev/null
        # What Docker (23 and later) sets up: its chains, DOCKER-USER hooked first in FORWARD.
        for t in iptables ip6tables; do
            $t -N DOCKER
            $t -N DOCKER-USER
            $t -I FORWARD 1 -j DOCKER-USER
        done'
}

down() {
    local ns=$1
    if [[ -e /run/netns/$ns ]]; then
        local pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns"
    fi
    rm -rf "/etc/netns/$ns"
}

case ${1:-} in
up) (($# == 3)) || die "usage: netns.sh up NS nft|legacy"; up "$2" "$3" ;;
down) (($# == 2)) || die "usage: netns.sh down NS"; down "$2" ;;
*) die "usage: netns.sh up NS nft|legacy | netns.sh down NS" ;;
esac
