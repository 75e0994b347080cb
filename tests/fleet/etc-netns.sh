#!/usr/bin/env bash
# etc-netns.sh: sourced, not run. The /etc of a host in a network namespace, shared by the fleet
# hosts (tests/fleet/hosts.sh) and the bench host (bench/netns.sh).
#
# Why it exists: `ip netns exec NS` bind-mounts every entry of /etc/netns/NS over /etc, and
# that is what gives each namespace host its own configuration:
#   ufw           a copy of /etc/ufw with the package's stock after.rules and after6.rules;
#   default       a copy of /etc/default, since `ufw default ...` writes /etc/default/ufw, which
#                 must never be the machine's;
#   alternatives  a copy of /etc/alternatives with iptables and ip6tables pinned to one backend:
#                 other work on this machine switches the root's alternatives (nft <-> legacy),
#                 which must not change a host's firewall backend in the middle of a run.
#
# usage: . tests/fleet/etc-netns.sh; etc_netns NS nft|legacy

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
