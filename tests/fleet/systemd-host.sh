#!/usr/bin/env bash
# systemd-host.sh: turn a fleet host (tests/fleet/hosts.sh) into a machine booted by a real
# systemd, with a real dockerd as docker.service, so that the role's ufw-docker.service is
# installed, started, restarted with Docker and rerun at boot by systemd itself.
#
# Why it exists: with `ufw_docker_backend: iptables` the policy lives in the live chains only,
# and the role relies on a systemd unit (PartOf=docker.service) to restore it after a Docker
# restart or a reboot. This machine's PID 1 is not systemd, so the unit can only be proven by a
# systemd of our own: PID 1 of a new PID namespace, in a new mount and cgroup namespace, sharing
# the fleet host's network namespace. Nothing it writes reaches the machine: /etc and /usr/local
# are overlays whose upper layers live in STATE, /etc/systemd/system is STATE/units, /run is a
# tmpfs, and its cgroups sit under one `ufwd-sd-NS` cgroup per hierarchy, removed on poweroff.
# The overlays and the units persist in STATE across a poweroff, so `boot` after `poweroff` is a
# reboot: the live firewall is flushed (as a reboot empties it), what was enabled starts again.
#
# usage (as root):
#   systemd-host.sh boot NS STATE FLEETDIR   boot systemd in netns NS (a fleet host: its sshd
#                                            from hosts.sh is replaced by an sshd.service of
#                                            this systemd, same config); STATE: absolute dir
#   systemd-host.sh poweroff NS STATE        kill every process of that systemd, flush NS's
#                                            firewall and Docker's links, remove its cgroups
#   systemd-host.sh exec NS STATE CMD...     CMD inside the booted host (its mounts, /run, PIDs)
#   systemd-host.sh contained NS STATE       fails when the host runs any service but its own
#
# STATE must not be under /tmp: the host has a /tmp of its own (into which the checkout holding
# this script is bound again when it lives under /tmp, so that a clone anywhere works).
set -euo pipefail

SELF=$(realpath "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
die() { echo "systemd-host.sh: $*" >&2; exit 1; }
log() { echo "systemd-host.sh: $*" >&2; }

# The cgroup mount points of this machine, one per v1 hierarchy plus the unified one.
hierarchies() { awk '$2 ~ "^/sys/fs/cgroup/[^/]+$" && ($3 == "cgroup" || $3 == "cgroup2") { sub("^/sys/fs/cgroup/", "", $2); print $2 }' /proc/self/mounts; }

# The cgroup path of PID in the hierarchy mounted at /sys/fs/cgroup/H.
cgroup_of() { # H PID
    local h=$1 key
    case $h in systemd) key=name=systemd ;; unified) key= ;; *) key=$h ;; esac
    awk -F: -v key="$key" '(key == "" && $1 == 0) || (key != "" && $2 == key) { print $3 }' "/proc/$2/cgroup"
}

# The systemd of our unit in netns NS, if it runs.
find_pid1() { # NS
    local p want
    want=$(ip netns exec "$1" readlink /proc/self/ns/net)
    for p in $(pgrep -f "systemd --system --unit=ufwd-host.target" || true); do
        if [[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$want" ]]; then echo "$p"; return 0; fi
    done
    return 0
}
pid1() { cat "$1/pid1" 2>/dev/null || true; }
alive() { [[ -n $1 && -d /proc/$1 ]] && [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *systemd*ufwd-host.target* ]]; }

write_units() { # NS STATE FLEETDIR
    local ns=$1 state=$2 fleet=$3 units=$2/units
    mkdir -p "$units/ufwd-host.target.wants"
    cat >"$units/ufwd-host.target" <<UNIT
# The default target of fleet host $ns (tests/fleet/systemd-host.sh): what this machine runs.
[Unit]
Description=ufw-docker test host $ns
DefaultDependencies=no
UNIT
    cat >"$units/sshd-fleet.service" <<UNIT
[Unit]
Description=sshd of fleet host $ns
DefaultDependencies=no
[Service]
ExecStart=/usr/sbin/sshd -D -f $fleet/$ns/sshd_config -E $fleet/$ns/sshd.log
RuntimeDirectory=sshd
[Install]
WantedBy=ufwd-host.target
UNIT
    # Docker 20.10 (Debian's docker.io): dockerd starts its own containerd; IPv6 published
    # through ip6tables; its data in STATE, so containers survive a reboot.
    cat >"$units/docker.service" <<UNIT
[Unit]
Description=Docker of fleet host $ns
DefaultDependencies=no
[Service]
Type=notify
ExecStart=/usr/sbin/dockerd -H unix:///run/docker.sock --data-root $state/docker --exec-root /run/docker-exec --pidfile /run/docker.pid --exec-opt native.cgroupdriver=cgroupfs --ipv6 --fixed-cidr-v6 2001:db8:d0c::/64 --experimental --ip6tables
KillMode=process
TimeoutStopSec=30
[Install]
WantedBy=ufwd-host.target
UNIT
    ln -sfn "$units/sshd-fleet.service" "$units/ufwd-host.target.wants/sshd-fleet.service"
    ln -sfn "$units/docker.service" "$units/ufwd-host.target.wants/docker.service"
    # This systemd shares the machine's kernel and files: the boot services of the distribution
    # would act on the real machine (systemd-tmpfiles empties /tmp, systemd-sysctl sets the
    # kernel's sysctls, systemd-binfmt, modules-load, sysusers, ...). A unit with default
    # dependencies (as ufw-docker.service) pulls sysinit.target and all it wants: every unit any
    # target of the distribution wants is masked, and so is every generator (fstab, ...).
    local u g
    for u in /lib/systemd/system/*.target.wants/* /lib/systemd/system/*.target.requires/* \
        /lib/systemd/system/systemd-tmpfiles-{setup,setup-dev,clean}.service \
        /lib/systemd/system/systemd-{remount-fs,sysctl,binfmt,modules-load,sysusers,journald}.service \
        /lib/systemd/system/systemd-journald{,-dev-log,-audit}.socket; do
        [[ -e $u || -L $u ]] || continue
        [[ ${u##*/} == *.target ]] && continue
        ln -sfn /dev/null "$units/${u##*/}"
    done
    mkdir -p "$state/etc-upper/systemd/system-generators"
    for g in /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/*; do
        [[ -e $g ]] && ln -sfn /dev/null "$state/etc-upper/systemd/system-generators/${g##*/}"
    done
}

# The first process of the host, inside its new namespaces: its own mounts, then systemd.
inside() { # NS STATE
    local ns=$1 state=$2 d h
    mount --make-rprivate /
    for d in etc usr-local; do mkdir -p "$state/$d-upper" "$state/$d-work"; done
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$state/etc-upper,workdir=$state/etc-work" /etc
    mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$state/usr-local-upper,workdir=$state/usr-local-work" /usr/local
    # As `ip netns exec` does: the host's own /etc/ufw and /etc/alternatives (hosts.sh).
    for d in /etc/netns/"$ns"/*; do mount --bind "$d" "/etc/${d##*/}"; done
    mount --bind "$state/units" /etc/systemd/system
    # Its own /var/cache, where the module's action plugin keeps its build (like hosts.sh).
    mkdir -p "$state/var-cache"
    mount --bind "$state/var-cache" /var/cache
    mount -t tmpfs -o mode=0755 tmpfs /run
    # The host's own /tmp would hide a checkout under /tmp (the tests run its scripts and test
    # server inside the host): keep the checkout at its path, on top of the new /tmp.
    if [[ $REPO == /tmp/* ]]; then
        mkdir -p "$state/checkout"
        mount --bind "$REPO" "$state/checkout"
    fi
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    if [[ $REPO == /tmp/* ]]; then
        mkdir -p "$REPO"
        mount --bind "$state/checkout" "$REPO"
    fi
    mkdir -p /run/netns
    mount -t proc proc /proc
    # cgroupfs mounted inside the cgroup namespace: rooted at the host's ufwd-sd-NS cgroups.
    mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
    for h in $HIERARCHIES; do
        mkdir -p "/sys/fs/cgroup/$h"
        case $h in
        systemd) mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd ;;
        unified) mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified ;;
        *) mount -t cgroup -o "$h" cgroup "/sys/fs/cgroup/$h" ;;
        esac
    done
    exec /lib/systemd/systemd --system --unit=ufwd-host.target --log-target=console --log-level=notice \
        --default-standard-output=inherit --default-standard-error=inherit
}

boot() { # NS STATE FLEETDIR
    local ns=$1 state=$2 fleet=$3 h base pid
    [[ $state == /* && $fleet == /* ]] || die "STATE and FLEETDIR must be absolute"
    [[ $state != /tmp/* && $fleet != /tmp/* ]] || die "STATE and FLEETDIR must not be under /tmp (the host has its own)"
    [[ -e /run/netns/$ns && -d /etc/netns/$ns ]] || die "no fleet host $ns"
    alive "$(pid1 "$state")" && die "host $ns is already booted (pid $(pid1 "$state"))"
    [[ -n $(hierarchies) ]] ||
        die "no cgroup hierarchy mounted under /sys/fs/cgroup/NAME: this script knows the hybrid (v1 and unified) layout only"
    mkdir -p "$state"
    write_units "$ns" "$state" "$fleet"
    # hosts.sh's sshd of this host gives way to the systemd one (same config, same address).
    pid=$(cat "$fleet/$ns/sshd.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"-f $fleet/$ns/sshd_config"* ]]; then
        kill -TERM "$pid"
        while [[ -d /proc/$pid ]]; do sleep 0.1; done
    fi
    # A subshell joins a fresh cgroup in every hierarchy, then becomes the host's PID 1.
    (
        for h in $(hierarchies); do
            base=/sys/fs/cgroup/$h$(cgroup_of "$h" "$BASHPID")
            base=${base%/}/ufwd-sd-$ns
            mkdir -p "$base"
            if [[ $h == cpuset ]]; then
                cat "$(dirname "$base")/cpuset.cpus" >"$base/cpuset.cpus"
                cat "$(dirname "$base")/cpuset.mems" >"$base/cpuset.mems"
            fi
            echo "$BASHPID" >"$base/cgroup.procs"
            echo "$base" >>"$state/cgroups"
        done
        export HIERARCHIES
        HIERARCHIES=$(hierarchies | tr '\n' ' ')
        exec nsenter --net="/run/netns/$ns" unshare --pid --fork --mount --uts --cgroup \
            "$SELF" inside "$ns" "$state" </dev/null >>"$state/systemd.log" 2>&1
    ) &
    local t
    for ((t = 0; t < 100; t++)); do
        pid=$(find_pid1 "$ns")
        [[ -n $pid ]] && break
        sleep 0.1
    done
    [[ -n $pid ]] || die "systemd did not start in $ns (see $state/systemd.log)"
    echo "$pid" >"$state/pid1"
    for ((t = 0; t < 300; t++)); do
        case $(run "$state" systemctl is-system-running 2>/dev/null || true) in
        running | degraded) break ;;
        esac
        sleep 0.1
    done
    run "$state" systemctl is-active --quiet docker.service sshd-fleet.service ||
        die "host $ns booted without docker.service or sshd-fleet.service running (see $state/systemd.log)"
    contained "$state" || die "host $ns runs services it must not (see above)"
    log "booted $ns: systemd pid $pid, dockerd and sshd running"
}

# Fails (and says which) when the host runs a service, socket, timer, path or automount other
# than its own three services: a boot unit of the distribution would act on the real machine.
# (Mounts are left out: they stay in the host's mount namespace.)
contained() { # STATE
    local extra
    extra=$(run "$1" systemctl list-units --type=service,socket,automount,timer,path --state=active --no-legend --plain |
        awk '{print $1}' | grep -vxE '(docker|sshd-fleet|ufw-docker)\.service' || true)
    [[ -z $extra ]] && return 0
    log "units active on the host that must not be: ${extra//$'\n'/ }"
    return 1
}

run() { # STATE CMD...
    local state=$1 pid
    shift
    pid=$(pid1 "$state")
    alive "$pid" || die "the host of $state is not booted"
    nsenter -t "$pid" -m -u -p -n -C -- "$@"
}

poweroff() { # NS STATE
    local ns=$1 state=$2 pid t cg tool
    pid=$(pid1 "$state")
    if alive "$pid"; then
        # As power is cut: every process of the host dies at once with its PID namespace.
        kill -KILL "$pid"
        for ((t = 0; t < 100; t++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    fi
    rm -f "$state/pid1"
    # A reboot empties the firewall and the links Docker made.
    if [[ -e /run/netns/$ns ]]; then
        for tool in iptables ip6tables; do
            ip netns exec "$ns" "$tool-save" >/dev/null 2>&1 || continue
            for table in filter nat mangle raw; do
                ip netns exec "$ns" "$tool" -t "$table" -F 2>/dev/null || true
                ip netns exec "$ns" "$tool" -t "$table" -X 2>/dev/null || true
            done
        done
        ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 |
            grep -E '^(docker0|br-|veth)' | while read -r l; do ip -n "$ns" link del "$l" 2>/dev/null || true; done
    fi
    # The host's cgroups, deepest first, once their processes are gone.
    if [[ -f $state/cgroups ]]; then
        while read -r cg; do
            [[ -d $cg ]] || continue
            for ((t = 0; t < 50; t++)); do
                find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [[ -d $cg ]] || break
                sleep 0.1
            done
            [[ -d $cg ]] && log "could not remove cgroup $cg"
        done <"$state/cgroups"
        rm -f "$state/cgroups"
    fi
    log "powered off $ns"
}

case ${1:-} in
boot) (($# == 4)) || die "usage: systemd-host.sh boot NS STATE FLEETDIR"; boot "$2" "$3" "$4" ;;
poweroff) (($# == 3)) || die "usage: systemd-host.sh poweroff NS STATE"; poweroff "$2" "$3" ;;
contained) (($# == 3)) || die "usage: systemd-host.sh contained NS STATE"; contained "$3" ;;
exec) (($# >= 4)) || die "usage: systemd-host.sh exec NS STATE CMD..."; shift 2; run "$@" ;;
inside) inside "$2" "$3" ;;
*) die "usage: systemd-host.sh boot NS STATE FLEETDIR | poweroff NS STATE | exec NS STATE CMD..." ;;
esac
