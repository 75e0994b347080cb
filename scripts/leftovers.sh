#!/usr/bin/env bash
# Fails if a test left anything running or mounted: the namespaces, dockerd/containerd/shim
# processes, container processes, mounts and /etc/netns copies that the tests create. Run after
# the test suites (scripts/test.sh); a leak here is a test-harness bug.
set -uo pipefail

problems=()
# The names the tests give their namespaces (and so their /etc/netns copies).
names='^(ufwd-|ufwl|ufwf|bed|mol|ufmol|ufaud|uf[0-9a-f]{4}h)'
ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$names" || true)
[ -z "$ns" ] || problems+=("namespaces: $(echo $ns)")
etc=$(ls /etc/netns 2>/dev/null | grep -E "$names" || true)
[ -z "$etc" ] || problems+=("/etc/netns copies: $(echo $etc)")
mounts=$(grep -E '/run/ufwd-(lab|bed)|/etc/netns/' /proc/mounts || true)
[ -z "$mounts" ] || problems+=("mounts: $mounts")
cg=$(find /sys/fs/cgroup -maxdepth 4 -type d -name 'ufwd-sd-*' 2>/dev/null || true)
[ -z "$cg" ] || problems+=("cgroups of systemd test hosts: $(echo $cg)")
# dockerd.sh's --cgroup-parent of each lab's Docker host (its containers).
cg=$(find /sys/fs/cgroup -maxdepth 2 -type d -name 'ufwd-bed-*' 2>/dev/null || true)
[ -z "$cg" ] || problems+=("cgroups of the Docker labs: $(echo $cg)")
unit_dirs=$(ls -d /var/tmp/ufwd-unit.* 2>/dev/null || true)
[ -z "$unit_dirs" ] || problems+=("systemd test host state: $(echo $unit_dirs)")
# The fleet hosts each have their own /var/cache: the action plugin's cache must not reach the
# machine's.
[ ! -e /var/cache/ufw-docker ] || problems+=("this machine's /var/cache/ufw-docker (a fleet host's cache leaked)")
# ... and their own /etc and /usr/local (overlays, tests/fleet/hosts.sh and systemd-host.sh): what
# the role installs on a host must not reach the machine's.
for f in /etc/ufw-docker /usr/local/sbin/ufw_docker /usr/local/lib/ufw-docker /etc/systemd/system/ufw-docker.service; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || problems+=("this machine's $f (what the role installs on a test host leaked)")
done
procs=""
for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case ${exe##*/} in dockerd|containerd|containerd-shim*|docker-proxy|testsrv|sshd|systemd) ;; *) continue ;; esac
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case $cmd in *ufwd-lab*|*ufwd-bed*|*testsrv*|*ufwd-fleet*|*ufwd-audit*|*ufwd-unit*|*ufwd-host.target*|*molecule*) procs+=" ${p#/proc/}:${cmd:0:60}" ;; esac
done
[ -z "$procs" ] || problems+=("processes:$procs")

if [ ${#problems[@]} -gt 0 ]; then
    echo "leftovers after the tests:" >&2
    printf '  %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "nothing left behind"
