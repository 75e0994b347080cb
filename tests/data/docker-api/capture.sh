#!/bin/bash
# capture.sh: records Docker's API answers for the unit tests of src/docker_api.rs, from a bed
# dockerd (tests/bed/dockerd.sh) in a namespace of its own.
#
# usage: tests/data/docker-api/capture.sh 20|28   (root; tests/bed/install-deps.sh done)
# Writes containers-VERSION.http, services-VERSION.http and version-VERSION.http beside this
# script: the raw HTTP/1.1 responses, headers and (chunked or not) body as they came over the
# socket (curl --raw -i). The daemon runs containers like the bed's: `web` on a user network (n10)
# publishing TCP and UDP, `shop-web-1` with Compose's labels, `plain` on the default bridge with
# IPv6, a Swarm service `api` published in host mode and a service `edge` published through the
# ingress routing mesh (8098/tcp, 8099/udp; its tasks need IPVS, which this kernel lacks, but the
# service and its published ports are in /services all the same). Everything is removed
# afterwards.
set -euo pipefail
V=${1:?usage: capture.sh 20|28}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
NS=ufwcap$V
DIR=/run/ufwcap$V
# shellcheck source=tests/fleet/etc-netns.sh
. "$ROOT/tests/fleet/etc-netns.sh"

cleanup() {
    local rc=$?
    set +e
    if ((rc != 0)) && [[ -f $DIR/dockerd.log ]]; then
        echo "capture.sh: failed ($rc); the end of dockerd.log:" >&2
        tail -n 30 "$DIR/dockerd.log" >&2
    fi
    if [[ -S $DIR/docker.sock ]]; then
        "$DIR/docker" service rm api edge >/dev/null 2>&1
        "$DIR/docker" ps -aq | xargs -r "$DIR/docker" rm -f >/dev/null 2>&1
        "$DIR/docker" swarm leave --force >/dev/null 2>&1
    fi
    "$ROOT/tests/bed/dockerd.sh" stop "$NS" "$DIR"
    ip netns del "$NS" 2>/dev/null
    rm -rf "/etc/netns/$NS" "$DIR"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add d0 type veth peer name d1
ip -n "$NS" link set d1 up
ip -n "$NS" addr add 192.0.2.1/24 dev d0
ip -n "$NS" link set d0 up
etc_netns "$NS" nft
mkdir -p "$DIR"
"$ROOT/tests/bed/dockerd.sh" start "$NS" "$DIR" "$V"
"$ROOT/tests/bed/image.sh" "$DIR/docker.sock" "$DIR/docker-client"
D="$DIR/docker"
$D network create --subnet 10.10.0.0/24 --ipv6 --subnet fd00:10::/64 n10 >/dev/null
$D run -d --name web --network n10 --ip 10.10.0.10 -p 8080:80 -p 8081:81/udp ufwd-test \
    /bin/testsrv serve --tcp 80 --udp 81 --name web >/dev/null
$D run -d --name shop-web-1 --label com.docker.compose.project=shop \
    --label com.docker.compose.service=web -p 8090:80 ufwd-test \
    /bin/testsrv serve --tcp 80 --name shop >/dev/null
$D run -d --name plain -p 127.0.0.1:8091:80 -p 9000-9001:90-91 ufwd-test \
    /bin/testsrv serve --tcp 80 --name plain >/dev/null
$D swarm init --advertise-addr 192.0.2.1 >/dev/null
$D service create --detach --name api --publish mode=host,target=80,published=8097 \
    ufwd-test /bin/testsrv serve --tcp 80 --name api >/dev/null
for _ in $(seq 60); do
    [[ -n $($D ps -q --filter label=com.docker.swarm.service.name=api) ]] && break
    sleep 1
done
[[ -n $($D ps -q --filter label=com.docker.swarm.service.name=api) ]] ||
    { $D service ps --no-trunc api >&2; exit 1; }
$D service create --detach --name edge --publish published=8098,target=80 \
    --publish published=8099,target=81,protocol=udp \
    ufwd-test /bin/testsrv serve --tcp 80 --udp 81 --name edge >/dev/null
sleep 1
curl -s --raw -i --unix-socket "$DIR/docker.sock" http://localhost/containers/json \
    >"$HERE/containers-$V.http"
curl -s --raw -i --unix-socket "$DIR/docker.sock" http://localhost/services \
    >"$HERE/services-$V.http"
ip netns exec "$NS" iptables-save -t nat >&2
ip netns exec "$NS" iptables-save -t filter | grep -i ingress >&2 || true
curl -s --raw -i --unix-socket "$DIR/docker.sock" http://localhost/version >"$HERE/version-$V.http"
$D ps --format '{{.Names}} {{.Ports}}' >&2
