#!/usr/bin/env bash
# etc-netns.sh: sourced, not run. The /etc of a host in a network namespace, shared by the fleet
# hosts (tests/fleet/hosts.sh), the bench host (bench/netns.sh), the namespace suites and the
# end-to-end bed's Docker hosts (tests/support.rs, tests/lab/mod.rs, tests/bed/dockerd.sh).
#
# Why it exists: `ip netns exec NS` bind-mounts every entry of /etc/netns/NS over /etc, and
# that is what gives each namespace host its own configuration:
#   ufw           a copy of /etc/ufw with the package's stock after.rules and after6.rules;
#   default       a copy of /etc/default, since `ufw default ...` writes /etc/default/ufw, which
#                 must never be the machine's;
#   alternatives  a copy of /etc/alternatives with iptables and ip6tables pinned to one backend:
#                 the host's backend is chosen here and only here, never by switching the
#                 machine's alternatives (which would change the backend of everything else on
#                 the machine, and of every other host whose /etc/alternatives is not pinned).
# Everything "on" the host sees this /etc: what runs under `ip netns exec NS` (UFW, the module,
# SSH sessions), and daemons that need the machine's /sys (dockerd, containerd), which
# etc_netns_cmd starts with the same bind mounts.
#
# usage: . tests/fleet/etc-netns.sh; etc_netns NS nft|legacy
#        etc_netns_cmd NS; "${ETC_NETNS_CMD[@]}" CMD...

etc_netns() { # NS BACKEND: (re)makes /etc/netns/NS
    local etc=/etc/netns/$1 backend=$2 t
    rm -rf "$etc"
    mkdir -p "$etc"
    cp -a /etc/ufw "$etc/ufw"
    cp /usr/share/ufw/iptables/after.rules /usr/share/ufw/iptables/after6.rules "$etc/ufw/"
    cp -a /etc/default "$etc/default"
    cp -a /etc/alternatives "$etc/alternatives"
    for t in iptables ip6tables; do
        ln -sfn "/usr/sbin/$t-$backend" "$etc/alternatives/$t"
        ln -sfn "/usr/sbin/$t-$backend-restore" "$etc/alternatives/$t-restore"
        ln -sfn "/usr/sbin/$t-$backend-save" "$etc/alternatives/$t-save"
    done
}

# etc_netns_cmd NS: sets ETC_NETNS_CMD to the command prefix that runs a command "on" host NS as
# `ip netns exec NS` would (NS's network namespace, /etc/netns/NS/* bind-mounted over /etc), but
# keeping the machine's /sys, which `ip netns exec` remounts, losing /sys/fs/cgroup (dockerd,
# containerd and runc need it). The prefix ends in an exec, so "${ETC_NETNS_CMD[@]}" CMD & gives
# CMD's own pid in $!.
#
# The bind mounts are made in a new mount namespace, a slave of the caller's, as `ip netns exec`
# makes its own: the machine's later mounts and unmounts reach in, and nothing mounted in there
# (the binds, dockerd's overlays) reaches the machine. The namespace, and every mount in it, ends
# with the last process in it.
etc_netns_cmd() {
    local ns=$1
    [[ -e /run/netns/$ns && -d /etc/netns/$ns ]] || {
        echo "etc_netns_cmd: no netns $ns with an /etc/netns/$ns" >&2
        return 1
    }
    # shellcheck disable=SC2016,SC2034 # expanded by the inner shell; used by the caller
    ETC_NETNS_CMD=(nsenter "--net=/run/netns/$ns" unshare --mount --propagation slave
        sh -c 'for d in /etc/netns/"$0"/*; do mount --bind "$d" "/etc/${d##*/}" || exit 125; done; exec "$@"' "$ns")
}
