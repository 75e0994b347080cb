#!/bin/bash
# dockerd.sh: start/stop one throw-away Docker daemon inside an existing
# network namespace, for the ufw-docker end-to-end test bed.
#
# Why it exists: the bed must run Docker 20.10 (bookworm) and Docker 28
# (forky, unpacked by install-deps.sh) side by side, each in its own netns with
# its own iptables/ip6tables rules, without touching the machine's own Docker
# state, and must be able to tear everything down again (no processes, no
# mounts) even after a failure.
#
# usage:
#   tests/bed/dockerd.sh start   NS DIR VERSION   # VERSION: 20 | 28
#   tests/bed/dockerd.sh restart NS DIR VERSION   # only dockerd; containers stay
#   tests/bed/dockerd.sh stop    NS DIR
#   NS   name of an existing netns (/run/netns/NS), e.g. a lab host (tests/lab/mod.rs), whose /etc
#        (/etc/netns/NS, made by etc_netns in tests/fleet/etc-netns.sh) pins its iptables backend
#   DIR  absolute state dir (short: unix socket paths must stay < 108 bytes)
# After start: DIR/docker.sock is the API socket, DIR/docker is a wrapper
# (`DIR/docker ps`) using the matching client (DIR/docker-client is a symlink to
# that bare client, for tools that add -H themselves), logs are
# DIR/dockerd.log and DIR/containerd.log.
# env:
#   BED_DOCKERD_ARGS  extra dockerd flags (e.g. "--userland-proxy=false")
#   BED_V6_CIDR       default-bridge IPv6 subnet (default fd00:dead:beef::/64)
#   BED_START_TIMEOUT seconds to wait for `docker info` (default 60)
#   BED_KEEP_DATA=1   stop keeps DIR/data and DIR/exec (default: removed)
#   BED_WHILE_DOWN    restart runs this command while dockerd is down
#   BED_CACHE         install-deps.sh cache (default /var/cache/ufw-docker-bed)
#
# Each dockerd gets its OWN containerd (started here, socket under DIR/exec),
# because dockerd only spawns a private "managed" containerd when
# /run/containerd/containerd.sock does not exist; with a system containerd
# running, several bed dockerds would share its "moby" namespace.
# Containers are put in the cgroup parent /ufwd-bed-NS (cgroupfs driver) so
# stop can find and kill whatever is left of them.
#
# The iptables backend (nft or legacy) is the host's, never the machine's: the
# daemons run with /etc/netns/NS/* bind-mounted over /etc, as everything run
# with `ip netns exec NS` has (UFW, the module), so dockerd and whatever it
# spawns (iptables, ip6tables, docker-proxy) find /etc/alternatives pinned to
# the host's backend. containerd is started in a new mount namespace that has
# those binds (etc_netns_cmd); dockerd joins that same mount namespace, since
# containerd's shims and runc must see the overlay mounts dockerd makes for
# the containers. That namespace is a slave of the machine's: its mounts never
# reach the machine, and it ends with the last daemon in it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/fleet/etc-netns.sh
. "$HERE/../fleet/etc-netns.sh"

CACHE=${BED_CACHE:-/var/cache/ufw-docker-bed}
D28=${BED_DOCKER28:-$CACHE/docker28}

die() { echo "dockerd.sh: $*" >&2; exit 1; }
log() { echo "dockerd.sh: $*" >&2; }

binaries() { # VERSION -> DOCKERD CLIENT PROXY XPATH
    case $1 in
    20) DOCKERD=/usr/sbin/dockerd CLIENT=/usr/bin/docker PROXY=/usr/sbin/docker-proxy
        XPATH=/usr/sbin:/usr/bin:/sbin:/bin ;;
    28) DOCKERD=$D28/usr/sbin/dockerd CLIENT=$D28/usr/bin/docker PROXY=$D28/usr/sbin/docker-proxy
        XPATH=$D28/usr/sbin:$D28/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin ;;
    *) die "VERSION must be 20 or 28, not '$1'" ;;
    esac
    local b
    for b in "$DOCKERD" "$CLIENT" "$PROXY"; do
        [[ -x $b ]] || die "$b missing (run tests/bed/install-deps.sh)"
    done
}

# alive PID: the process exists and is not a zombie (kill -0 succeeds on
# zombies, and this machine's PID 1 may reap orphans late).
alive() {
    local st
    [[ -n ${1:-} ]] || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# wait_gone SECONDS PID...: true once none of the pids exist.
wait_gone() {
    local t=$(( $1 * 10 )) p left; shift
    while (( t-- > 0 )); do
        left=0
        for p in "$@"; do if alive "$p"; then left=1; fi; done
        (( left )) || return 0
        sleep 0.1
    done
    return 1
}

# kill_pids GRACE PID...: TERM, wait GRACE seconds, then KILL.
kill_pids() {
    local grace=$1; shift
    (( $# )) || return 0
    kill -TERM "$@" 2>/dev/null || true
    wait_gone "$grace" "$@" && return 0
    if (( grace > 0 )); then log "pids $* ignored TERM, sending KILL"; fi
    kill -KILL "$@" 2>/dev/null || true
    wait_gone 5 "$@" || log "pids $* survived KILL"
}

# Our daemons/shims: exe is one of the docker/containerd binaries AND the
# command line names DIR (so callers whose arguments mention DIR are never hit).
pids_of_dir() {
    local dir=$1 p exe cmd
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        case ${exe##*/} in
        dockerd|containerd|containerd-shim*|runc|docker-proxy) ;;
        *) continue ;;
        esac
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        if [[ " $cmd " == *" $dir/"* || " $cmd " == *"=$dir/"* ]]; then echo "${p#/proc/}"; fi
    done
    return 0
}

# docker-proxy processes in netns NS (their command line does not name DIR).
proxies_in_ns() {
    local ns=/run/netns/$1 p exe ino
    [[ -e $ns ]] || return 0
    ino=$(stat -L -c %i "$ns")
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        [[ ${exe##*/} == docker-proxy ]] || continue
        if [[ $(stat -L -c %i "$p/ns/net" 2>/dev/null) == "$ino" ]]; then echo "${p#/proc/}"; fi
    done
    return 0
}

# in_mntns DIR: the pids in the mount namespace the daemons of DIR were started in (never the
# caller's own).
in_mntns() {
    local ns p
    ns=$(cat "$1/mntns" 2>/dev/null) || return 0
    [[ -n $ns && $ns != "$(readlink /proc/self/ns/mnt)" ]] || return 0
    for p in /proc/[0-9]*; do
        if [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$ns" ]] && alive "${p#/proc/}"; then echo "${p#/proc/}"; fi
    done
    return 0
}

cgroup_dirs() { # NS -> every /sys/fs/cgroup/.../ufwd-bed-NS directory
    local mp
    awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts | sort -u | while read -r mp; do
        if [[ -d $mp/ufwd-bed-$1 ]]; then echo "$mp/ufwd-bed-$1"; fi
    done
    return 0
}

# pinned NS: the host's /etc/alternatives pins iptables and ip6tables (etc_netns); the daemons
# never run with whatever the machine's alternatives say.
pinned() {
    local t
    for t in iptables ip6tables; do
        [[ $(readlink "/etc/netns/$1/alternatives/$t") =~ ^/usr/sbin/$t-(nft|legacy)$ ]] ||
            die "netns $1 has no iptables backend of its own in /etc/netns/$1/alternatives/$t; make its /etc with etc_netns (tests/fleet/etc-netns.sh)"
    done
}

# containerd_pid DIR: the pid of DIR's containerd (or of the setsid waiting for it, which lives
# in the same namespaces), if it runs.
containerd_pid() {
    local p
    p=$(cat "$1/containerd.pid" 2>/dev/null) || return 1
    alive "$p" && [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *" $1/containerd.toml"* ]] && echo "$p"
}

mounts_under() { # DIR -> mountpoints at or below DIR, deepest first
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}

start() {
    local ns=$1 dir=$2 version=$3
    [[ -e /run/netns/$ns ]] || die "netns $ns does not exist (/run/netns/$ns)"
    pinned "$ns"
    [[ $dir == /* ]] || die "DIR must be absolute"
    dir=${dir%/}
    (( ${#dir} + 40 < 108 )) || die "DIR too long for unix socket paths: $dir"
    binaries "$version"
    if [[ -f $dir/dockerd.pid ]] && alive "$(cat "$dir/dockerd.pid")"; then
        die "a dockerd is already running for $dir (pid $(cat "$dir/dockerd.pid"))"
    fi
    command -v containerd >/dev/null || die "containerd missing (run tests/bed/install-deps.sh)"
    mkdir -p "$dir/data" "$dir/exec/containerd"
    echo "$version" >"$dir/version"
    echo "$ns" >"$dir/netns"
    printf '#!/bin/sh\n# docker CLI for the bed dockerd in %s\nexec %s -H unix://%s/docker.sock "$@"\n' \
        "$dir" "$CLIENT" "$dir" >"$dir/docker"
    chmod +x "$dir/docker"
    ln -sfn "$CLIENT" "$dir/docker-client" # the bare CLI, for tools that add -H themselves
    # An explicit config file keeps /etc/docker/daemon.json out of it. 20.10
    # also writes a trust key to /etc/docker/key.json unless told otherwise
    # (config-file only, there is no flag for it).
    if [[ $version == 20 ]]; then
        printf '{"deprecated-key-path": "%s/key.json"}\n' "$dir" >"$dir/daemon.json"
    else
        echo '{}' >"$dir/daemon.json"
    fi

    cat >"$dir/containerd.toml" <<TOML
# containerd for the bed dockerd in $dir (written by tests/bed/dockerd.sh)
version = 2
root = "$dir/data/containerd"
state = "$dir/exec/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$dir/exec/containerd/containerd.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/data/containerd/opt"
TOML

    T0=$SECONDS
    start_containerd "$ns" "$dir"
    start_dockerd "$ns" "$dir" "$version"
}

# setsid: own session, so a Ctrl-C in the caller's terminal does not reach
# the daemons (Go re-enables SIGINT even when the shell ignored it); -w: if
# setsid has to fork, $! still lives exactly as long as the daemon.
start_containerd() {
    local ns=$1 dir=$2 sock=$2/exec/containerd/containerd.sock
    rm -f "$sock"
    # In the host's network namespace and with its /etc, in a mount namespace of its own.
    etc_netns_cmd "$ns"
    "${ETC_NETNS_CMD[@]}" env PATH="$XPATH" setsid -w \
        containerd --config "$dir/containerd.toml" </dev/null >"$dir/containerd.log" 2>&1 &
    echo $! >"$dir/containerd.pid"
    local i
    for (( i = 0; i < 200; i++ )); do
        [[ -S $sock ]] && break
        alive "$(cat "$dir/containerd.pid")" || break
        sleep 0.1
    done
    if [[ ! -S $sock ]]; then
        tail -n 30 "$dir/containerd.log" >&2 || true
        stop "$ns" "$dir"
        die "containerd did not come up"
    fi
    # stop makes sure nothing is left in this mount namespace (its mounts live as long as it).
    readlink "/proc/$(cat "$dir/containerd.pid")/ns/mnt" >"$dir/mntns"
}

start_dockerd() {
    local ns=$1 dir=$2 version=$3 sock=$2/exec/containerd/containerd.sock
    local args=(
        --config-file "$dir/daemon.json"
        --data-root "$dir/data"
        --exec-root "$dir/exec"
        --pidfile "$dir/dockerd.pid"
        -H "unix://$dir/docker.sock"
        --containerd "$sock"
        --exec-opt native.cgroupdriver=cgroupfs
        --cgroup-parent "/ufwd-bed-$ns"
        --userland-proxy-path "$PROXY"
        --ipv6 --fixed-cidr-v6 "${BED_V6_CIDR:-fd00:dead:beef::/64}"
    )
    # 20.10: ip6tables is experimental and off by default (28: on by default).
    if [[ $version == 20 ]]; then args+=(--experimental --ip6tables); fi
    # shellcheck disable=SC2206 # word splitting of the extra flags is intended
    args+=(${BED_DOCKERD_ARGS:-})

    rm -f "$dir/dockerd.pid"
    # containerd's namespaces: the host's network, and the mount namespace with the host's /etc.
    local cpid
    cpid=$(containerd_pid "$dir") || die "the containerd of $dir is not running"
    nsenter --net="/run/netns/$ns" --mount="/proc/$cpid/ns/mnt" env PATH="$XPATH" setsid -w \
        "$DOCKERD" "${args[@]}" </dev/null >"$dir/dockerd.log" 2>&1 &
    local dpid=$! timeout=${BED_START_TIMEOUT:-60}
    until "$CLIENT" -H "unix://$dir/docker.sock" info >/dev/null 2>&1; do
        if ! alive "$dpid" || (( SECONDS - T0 > timeout )); then
            log "dockerd $version in $ns did not come up (log tail follows)"
            tail -n 40 "$dir/dockerd.log" >&2 || true
            stop "$ns" "$dir"
            exit 1
        fi
        sleep 0.2
    done
    # What dockerd itself resolves `iptables` to: the host's pinned backend.
    local want got
    want=$(readlink "/etc/netns/$ns/alternatives/iptables")
    got=$(readlink "/proc/$(cat "$dir/dockerd.pid")/root/etc/alternatives/iptables" || true)
    if [[ $got != "$want" ]]; then
        stop "$ns" "$dir"
        die "dockerd in $ns sees /etc/alternatives/iptables -> ${got:-nothing}, not the host's $want"
    fi
    log "dockerd $("$CLIENT" -H "unix://$dir/docker.sock" version -f '{{.Server.Version}}') up in netns $ns after $(( SECONDS - T0 ))s: unix://$dir/docker.sock (pid $(cat "$dir/dockerd.pid")), ${want#/usr/sbin/}"
}

# stop_dockerd DIR: TERM the dockerd of DIR (KILL after 30 s) and wait.
stop_dockerd() {
    local dir=$1 dpid=""
    if [[ -f $dir/dockerd.pid ]]; then dpid=$(cat "$dir/dockerd.pid"); fi
    if alive "$dpid" && [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$dpid/cmdline") == *" $dir/"* ]]; then
        kill -TERM "$dpid"
        wait_gone 30 "$dpid" || { log "dockerd $dpid ignored TERM, sending KILL"; kill -KILL "$dpid" 2>/dev/null || true; wait_gone 5 "$dpid" || true; }
    fi
}

# restart: like `systemctl restart docker`: only dockerd goes down (stopping
# its containers the normal way) and comes back with the same flags;
# containerd, images and containers stay, so `--restart always` containers
# come back (possibly with new addresses).
restart() {
    local ns=$1 dir=${2%/} version=$3
    [[ -e /run/netns/$ns ]] || die "netns $ns does not exist (/run/netns/$ns)"
    [[ -f $dir/daemon.json && -f $dir/containerd.toml ]] || die "$dir was never started; use start"
    pinned "$ns"
    binaries "$version"
    T0=$SECONDS
    stop_dockerd "$dir"
    # BED_WHILE_DOWN: a command to run while dockerd is down (a simulated reboot flushes the
    # firewall and starts UFW here, before or instead of after Docker).
    if [[ -n ${BED_WHILE_DOWN:-} ]]; then bash -c "$BED_WHILE_DOWN"; fi
    if ! containerd_pid "$dir" >/dev/null; then start_containerd "$ns" "$dir"; fi
    start_dockerd "$ns" "$dir" "$version"
}

stop() {
    local ns=$1 dir=${2%/} pids p
    [[ $dir == /* ]] || die "DIR must be absolute"
    # 1. Remove containers while dockerd still runs (their PID 1 ignores TERM,
    #    so a plain dockerd shutdown would wait 10 s per container).
    #    DIR/docker is the CLI wrapper written by start (it already has -H).
    if [[ -x $dir/docker && -S $dir/docker.sock ]] && timeout 10 "$dir/docker" info >/dev/null 2>&1; then
        mapfile -t pids < <(timeout 20 "$dir/docker" ps -aq 2>/dev/null || true)
        if (( ${#pids[@]} )); then
            timeout 60 "$dir/docker" rm -f "${pids[@]}" >/dev/null 2>&1 ||
                log "docker rm -f failed; killing leftovers by hand"
        fi
    fi
    # 2. dockerd (its docker-proxy children go with it, normally).
    stop_dockerd "$dir"
    # 3. containerd, shims, runc, proxies left for this DIR/netns.
    mapfile -t pids < <(pids_of_dir "$dir"; proxies_in_ns "$ns")
    kill_pids 10 "${pids[@]}"
    # 4. Container processes orphaned by a killed shim: kill by cgroup.
    local cg
    mapfile -t pids < <(cgroup_dirs "$ns" | while read -r cg; do find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un)
    kill_pids 0 "${pids[@]}" # their PID 1 ignores TERM anyway
    cgroup_dirs "$ns" | while read -r cg; do
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove cgroup $cg"
    done
    # 4b. Whatever else is still in the daemons' mount namespace (only they and what they spawn
    #     live there): it keeps that namespace, and so dockerd's mounts, alive.
    mapfile -t pids < <(in_mntns "$dir")
    if (( ${#pids[@]} )); then
        log "killing pids ${pids[*]}, left in the daemons' mount namespace"
        kill_pids 5 "${pids[@]}"
    fi
    if [[ -n $(in_mntns "$dir") ]]; then die "processes left in the daemons' mount namespace: $(in_mntns "$dir" | tr '\n' ' ')"; fi
    # 5. Mounts: overlay merged dirs, netns bind mounts, the data-root bind.
    local mp
    for _ in 1 2 3; do
        mapfile -t pids < <(mounts_under "$dir")
        (( ${#pids[@]} )) || break
        for mp in "${pids[@]}"; do
            umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
        done
    done
    if [[ -n $(mounts_under "$dir") ]]; then
        mounts_under "$dir" >&2
        die "mounts left under $dir"
    fi
    # 6. Shim sockets of shims that were killed (containerd 1.6 puts them in
    #    /run/containerd/s/sha256(ADDRESS/NAMESPACE/ID), outside DIR).
    local task
    for task in "$dir"/exec/containerd/state/io.containerd.runtime.v2.task/*/*; do
        [[ -d $task ]] || continue
        task=$(printf '%s' "$dir/exec/containerd/containerd.sock/${task#*/io.containerd.runtime.v2.task/}" | sha256sum)
        task=/run/containerd/s/${task%% *}
        if [[ -S $task ]]; then rm -f "$task"; fi
    done
    if [[ ${BED_KEEP_DATA:-0} != 1 ]]; then
        rm -rf --one-file-system "$dir/data" "$dir/exec"
    fi
    rm -f "$dir/dockerd.pid" "$dir/containerd.pid" "$dir/docker.sock" "$dir/docker-client" "$dir/mntns"
    log "stopped bed dockerd for $dir (netns $ns)"
}

case ${1:-} in
start) (( $# == 4 )) || die "usage: dockerd.sh start NS DIR VERSION"; start "$2" "$3" "$4" ;;
restart) (( $# == 4 )) || die "usage: dockerd.sh restart NS DIR VERSION"; restart "$2" "$3" "$4" ;;
stop) (( $# == 3 )) || die "usage: dockerd.sh stop NS DIR"; stop "$2" "$3" ;;
*) die "usage: dockerd.sh start|restart NS DIR VERSION | dockerd.sh stop NS DIR" ;;
esac
