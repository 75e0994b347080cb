#!/bin/bash
# smoke.sh: prove the end-to-end bed works for one Docker version and one
# iptables backend, then tear it down and prove nothing is left.
#
# Why it exists: it is the executable record of "the bed works" (and of the
# Docker-bypasses-UFW problem: published ports are reachable from the client
# netns), and the template for the project's real end-to-end tests.
#
# usage: tests/bed/smoke.sh VERSION [nft|legacy]     VERSION: 20 | 28
#   The backend (default nft) is pinned in the docker host netns's own /etc:
#   /etc/netns/$BED_H/alternatives (etc_netns, tests/fleet/etc-netns.sh), which
#   `ip netns exec` and dockerd.sh mount over /etc; teardown removes it. The
#   machine's alternatives are never touched (checked), so runs of either
#   backend can run at once.
# env: BED_H / BED_C netns names (default bedh / bedc; set both to run several
#      beds at once), BED_DIR (default /run/ufwd-bed/$BED_H), TESTSRV (default:
#      cargo build).
# Ends with the line "N passed, N failed"; exit 0 only if nothing failed.
set -euo pipefail

VERSION=${1:?usage: smoke.sh 20|28 [nft|legacy]}
BACKEND=${2:-nft}
HERE=$(cd "$(dirname "$0")" && pwd)
H=${BED_H:-bedh} C=${BED_C:-bedc}
DIR=${BED_DIR:-/run/ufwd-bed/$H}
PASS=0 FAIL=0
# shellcheck source=tests/fleet/etc-netns.sh
. "$HERE/../fleet/etc-netns.sh"

say() { echo "smoke[$VERSION/$BACKEND]: $*"; }
ok() { PASS=$((PASS + 1)); say "PASS $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL $*"; }

[[ $BACKEND == nft || $BACKEND == legacy ]] || { echo "backend must be nft or legacy" >&2; exit 2; }

# The machine's own iptables alternatives, which the run must not change.
machine_alternatives() {
    update-alternatives --query iptables
    update-alternatives --query ip6tables
}
ALT_BEFORE=$(machine_alternatives)

TORN_DOWN=0
teardown() {
    (( TORN_DOWN )) && return 0
    TORN_DOWN=1
    "$HERE/dockerd.sh" stop "$H" "$DIR" || true
    "$HERE/netns.sh" down "$H" "$C" || true
    rm -rf "/etc/netns/$H"
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP # so EXIT runs the teardown on signals too

# probe EXPECT PROTO ADDR PORT [NAME]: EXPECT is open|closed.
probe() {
    local want=$1 proto=$2 addr=$3 port=$4 name=${5:-} out
    out=$(ip netns exec "$C" "$TESTSRV" probe "$proto" "$addr" "$port" ${name:+--expect "$name"} 2>&1) || true
    if [[ $want == open && $out == "open $name"* ]] || [[ $want == closed && $out == closed* ]]; then
        ok "$C -> $proto $addr:$port is $want (${out%%$'\n'*})"
    else
        bad "$C -> $proto $addr:$port: want $want, got: ${out//$'\n'/ | }"
    fi
}

# wait_ready CONTAINER: until the container answers on its own IPv4 and IPv6
# addresses from the host netns (IPv6 addresses are "tentative" for ~2 s
# after start because of duplicate address detection).
wait_ready() {
    local ip t
    for ip in $("$DIR/docker" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}} {{end}}' "$1"); do
        for (( t = 0; t < 50; t++ )); do
            ip netns exec "$H" "$TESTSRV" probe tcp "$ip" 80 --timeout-ms 300 >/dev/null 2>&1 && break
            sleep 0.2
        done
        (( t < 50 )) || { bad "container $1 not reachable on $ip from $H"; return 1; }
    done
}

if [[ -z ${TESTSRV:-} ]]; then
    (cd "$HERE/testsrv" && cargo build --quiet --release --target x86_64-unknown-linux-musl)
    TESTSRV=$HERE/testsrv/target/x86_64-unknown-linux-musl/release/testsrv
fi
export TESTSRV

"$HERE/netns.sh" up "$H" "$C"
etc_netns "$H" "$BACKEND" # the docker host's /etc: its iptables backend, its /etc/ufw
say "in $H: $(ip netns exec "$H" iptables -V), $(ip netns exec "$H" ip6tables -V)"
t0=$SECONDS
"$HERE/dockerd.sh" start "$H" "$DIR" "$VERSION"
say "dockerd start took $((SECONDS - t0))s: $("$DIR/docker" version -f 'server {{.Server.Version}}, client {{.Client.Version}}')"
"$HERE/image.sh" "$DIR/docker.sock" "$DIR/docker-client"

# Default bridge: the classic case.
"$DIR/docker" run -d --name c1 -p 8080:80 -p 8081:81/udp ufwd-test \
    /bin/testsrv serve --tcp 80 --udp 81 --name c1 >/dev/null
wait_ready c1
probe open tcp 203.0.113.1 8080 c1
probe open udp 203.0.113.1 8081 c1
probe open tcp 2001:db8:1::1 8080 c1
probe open udp 2001:db8:1::1 8081 c1
probe closed tcp 203.0.113.1 8099   # nothing published there: the prober can say no
probe closed udp 203.0.113.1 8099

# User-defined dual-stack network.
"$DIR/docker" network create --subnet 100.90.0.0/24 --ipv6 --subnet fd00:90::/64 n1 >/dev/null
"$DIR/docker" run -d --name c2 --network n1 -p 9090:80 -p 9091:81/udp ufwd-test \
    /bin/testsrv serve --tcp 80 --udp 81 --name c2 >/dev/null
wait_ready c2
probe open tcp 203.0.113.1 9090 c2
probe open udp 203.0.113.1 9091 c2
probe open tcp 2001:db8:1::1 9090 c2
probe open udp 2001:db8:1::1 9091 c2

# Which backend did dockerd really write to, and is DOCKER-USER there?
for fam in iptables ip6tables; do
    if ip netns exec "$H" "$fam-$BACKEND" -S DOCKER-USER >/dev/null 2>&1; then
        ok "$fam-$BACKEND has a DOCKER-USER chain in $H"
    elif [[ $fam == ip6tables && $VERSION == 20 ]]; then
        say "note: dockerd 20.10 creates no ip6tables DOCKER-USER chain"
    else
        bad "$fam-$BACKEND has no DOCKER-USER chain in $H"
    fi
    other=$([[ $BACKEND == nft ]] && echo legacy || echo nft)
    n=$(ip netns exec "$H" "$fam-$other-save" 2>/dev/null | grep -c -- '-A ' || true)
    if (( n == 0 )); then ok "$fam-$other has no rules in $H"; else bad "$fam-$other has $n rules in $H"; fi
done

if [[ $(machine_alternatives) == "$ALT_BEFORE" ]]; then
    ok "the machine's iptables alternatives are as they were, with the bed up"
else
    bad "the machine's iptables alternatives changed with the bed up: $(machine_alternatives | grep -E '^(Name|Status|Value):' | tr '\n' ' ')"
fi

# Teardown, then prove nothing of THIS bed is left (other beds may run).
netns_ino=$(stat -L -c %i "/run/netns/$H")
t0=$SECONDS
teardown
say "teardown took $((SECONDS - t0))s"
left=$(ip netns list | awk '{print $1}' | grep -xE "$H|$C" || true)
if [[ -z $left ]]; then ok "no bed netns left"; else bad "netns left: $left"; fi
left=$(grep -E "$DIR|/run/netns/($H|$C) " /proc/mounts || true)
if [[ -z $left ]]; then ok "no bed mounts left"; else bad "mounts left: $left"; fi
left=""
for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case ${exe##*/} in dockerd|containerd|containerd-shim*|docker-proxy|testsrv) ;; *) continue ;; esac
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    # ours: names DIR, or still lives in the (deleted) docker-host netns
    if [[ $cmd == *"$DIR/"* || $(stat -L -c %i "$p/ns/net" 2>/dev/null) == "$netns_ino" ]]; then
        left+=" ${p#/proc/}:${cmd:0:80}"
    fi
done
if [[ -z $left ]]; then ok "no dockerd/containerd/shim/proxy/testsrv processes left"; else bad "processes left:$left"; fi
left=$(find /sys/fs/cgroup -maxdepth 2 -name "ufwd-bed-$H" 2>/dev/null || true)
if [[ -z $left ]]; then ok "no bed cgroups left"; else bad "cgroups left: $left"; fi
if [[ ! -e /etc/netns/$H ]]; then ok "no /etc/netns/$H left"; else bad "/etc/netns/$H left"; fi
if [[ $(machine_alternatives) == "$ALT_BEFORE" ]]; then
    ok "the machine's iptables alternatives are as they were, after the teardown"
else
    bad "the machine's iptables alternatives changed after the teardown: $(machine_alternatives | grep -E '^(Name|Status|Value):' | tr '\n' ' ')"
fi

echo "$PASS passed, $FAIL failed"
(( FAIL == 0 ))
