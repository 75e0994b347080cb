#!/bin/bash
# netns.sh: create/remove the two network namespaces of one test bed: a
# "docker host" netns and a "client" netns joined by a veth pair.
#
# Why it exists: the end-to-end tests must send traffic to published ports
# from "outside" the docker host, without touching the machine's own network
# or sending anything to real addresses. Every bed pair is isolated, so several
# pairs can use the same addresses at once.
#
# usage:
#   tests/bed/netns.sh up   [HOSTNS [CLIENTNS]]   (default: bedh bedc)
#   tests/bed/netns.sh down [HOSTNS [CLIENTNS]]
# Layout (interface eth0 on both sides, addresses without DAD so they are
# usable at once):
#   HOSTNS   eth0 203.0.113.1/24   2001:db8:1::1/64   ip_forward=1, ipv6 forwarding=1
#   CLIENTNS eth0 203.0.113.10/24  2001:db8:1::10/64  default routes via HOSTNS
# Neither netns has a route to the outside world.
set -euo pipefail

cmd=${1:-}
H=${2:-bedh}
C=${3:-bedc}

down() {
    local ns
    for ns in "$C" "$H"; do
        if [[ -e /run/netns/$ns ]]; then
            ip netns del "$ns" || echo "netns.sh: could not delete netns $ns" >&2
        fi
    done
}

up() {
    [[ -e /run/netns/$H || -e /run/netns/$C ]] && { echo "netns.sh: $H or $C already exists" >&2; exit 1; }
    trap 'down' ERR
    ip netns add "$H"
    ip netns add "$C"
    ip link add eth0 netns "$H" type veth peer name eth0 netns "$C"
    ip -n "$H" link set lo up
    ip -n "$C" link set lo up
    ip -n "$H" addr add 203.0.113.1/24 dev eth0
    ip -n "$H" addr add 2001:db8:1::1/64 dev eth0 nodad
    ip -n "$C" addr add 203.0.113.10/24 dev eth0
    ip -n "$C" addr add 2001:db8:1::10/64 dev eth0 nodad
    ip -n "$H" link set eth0 up
    ip -n "$C" link set eth0 up
    ip -n "$C" route add default via 203.0.113.1
    ip -n "$C" -6 route add default via 2001:db8:1::1
    ip netns exec "$H" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    trap - ERR
    echo "netns.sh: up: $H (203.0.113.1, 2001:db8:1::1) <-> $C (203.0.113.10, 2001:db8:1::10)"
}

case $cmd in
up) up ;;
down) down ;;
*) echo "usage: netns.sh up|down [HOSTNS [CLIENTNS]]" >&2; exit 2 ;;
esac
