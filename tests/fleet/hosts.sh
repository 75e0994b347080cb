#!/usr/bin/env bash
# hosts.sh: SSH test hosts in network namespaces, for the molecule scenario and the fleet test.
#
# Why it exists: the role must be tested the way it runs, over SSH to hosts that each have their
# own firewall and their own /etc/ufw, and this machine reaches no other machine. Each host is a
# network namespace running its own sshd, started with `ip netns exec`, so every SSH session
# inherits the namespace's network stack and the mount namespace in which /etc/netns/HOST/ufw is
# bind-mounted over /etc/ufw. In that mount namespace the host also has an /etc and a /usr/local
# of its own, overlays on the machine's whose changes stay in DIR (what the role installs there,
# /etc/ufw-docker and /usr/local/sbin/ufw_docker, never reaches the machine), and its own
# /var/cache. The controller (Ansible) runs in the root namespace and reaches the hosts over a
# bridge. Nothing here touches the root namespace's firewall, /etc or /usr/local.
#
# usage:
#   tests/fleet/hosts.sh create N DIR    # N hosts (1..200); DIR: absolute, new or empty, and
#                                        # reachable by others (o+x up to /: the user `fleet`)
#   tests/fleet/hosts.sh destroy DIR     # kills the sshds, deletes namespaces, bridge, /etc/netns
#                                        # dirs, and DIR (KEEP_DIR=1 keeps DIR for its logs)
#   tests/fleet/hosts.sh run NS CMD...   # CMD "on" host NS, keeping the machine's /sys (dockerd)
#   tests/fleet/hosts.sh enter DIR NS CMD...  # CMD in host NS's sshd's namespaces: what an SSH
#                                        # session sees, its private /etc and /usr/local included
# env:
#   FLEET_NET   first three octets of the hosts' /24 (default 198.51.100; molecule uses 203.0.113):
#               the bridge in the root namespace is FLEET_NET.1, host i is FLEET_NET.(10+i);
#               IPv6 alike in 2001:db8:51::/64 (2001:db8:113::/64, 2001:db8:2::/64)
#               (the root namespace must not have the /24 already: here 192.0.2.0/24 is eth0's)
#   FLEET_IPTABLES  nft (default) or legacy: the iptables backend of every host
#   FLEET_NAME  prefix of namespace and link names, at most 8 characters (default: uf + 4 random
#               hex digits); host i is the namespace ${FLEET_NAME}h$i
#
# DIR then holds: inventory.ini (group `fleet`, hosts h1..hN, with ansible_host, the key, the
# interpreter and fleet_netns; Ansible logs in as root, or as the user `fleet` with
# `-u fleet --become`: every host has that user, with the same key and NOPASSWD sudo), id_ed25519 (the controller's key), hosts (one namespace per line),
# bridge, and per namespace NS/{sshd_config,ssh_host_ed25519_key,sshd.pid,sshd.log} and the
# upper layers of its /etc and /usr/local, NS/etc-upper and NS/usr-local-upper (what the host
# wrote there, e.g. NS/etc-upper/ufw-docker/policy.json), and its /var/cache, NS/var-cache. Each host's
# /etc/ufw (= /etc/netns/NS/ufw) is a copy of /etc/ufw with the package's stock after.rules and
# after6.rules, plus a file `fleet-host` holding NS, which create reads back over SSH to prove
# that the session sees that host's /etc/ufw. Each host's /etc/alternatives
# (= /etc/netns/NS/alternatives) pins iptables and ip6tables to FLEET_IPTABLES, whatever the root
# namespace's alternatives are switched to meanwhile; its /etc/default (= /etc/netns/NS/default)
# is a copy, so `ufw default ...` never writes the machine's. Run a command "on" host NS from the
# controller with `ip netns exec NS CMD`: the same network, /etc/ufw, /etc/default and
# /etc/alternatives as an SSH session, but the machine's /etc otherwise, /usr/local and /var/cache;
# `hosts.sh enter DIR NS CMD` sees exactly what an SSH session sees.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/fleet/etc-netns.sh
. "$HERE/etc-netns.sh"
die() { echo "hosts.sh: $*" >&2; exit 1; }
log() { echo "hosts.sh: $*" >&2; }

ssh_opts() { # DIR -> the ssh options the controller uses
    echo "-i $1/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5"
}

# The mounts that give host $1 (in `ip netns exec $1`, run as `sh -c "$HOST_MOUNTS" sh NS
# NSDIR`) its own /var/cache (the module's action plugin caches its build there), /usr/local and
# /etc: overlays on the machine's, upper layers in NSDIR. `ip netns exec` bound the entries of
# /etc/netns/NS over the machine's /etc, but an overlay of /etc shows what is under those mounts
# (overlayfs sees no submount of its lower directory), so they are bound again on top of it, from
# the real /etc/netns/NS (bound to NSDIR/etc-netns first: through the overlay, a write to
# /etc/ufw would be copied up into the upper layer instead of reaching /etc/netns/NS/ufw, where
# the tests read it).
# shellcheck disable=SC2016 # expanded by the inner shell
HOST_MOUNTS='set -e
mount --bind "$2/var-cache" /var/cache
mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$2/usr-local-upper,workdir=$2/usr-local-work" /usr/local
mount --bind "/etc/netns/$1" "$2/etc-netns"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$2/etc-upper,workdir=$2/etc-work" /etc
for e in "$2"/etc-netns/*; do mount --bind "$e" "/etc/${e##*/}"; done'

# A pid is one of our sshds when its command line names the config file we wrote for it.
our_sshd() { # PID CONFIG
    [[ -n $1 && -r /proc/$1/cmdline ]] && [[ $(tr '\0' ' ' <"/proc/$1/cmdline") == *"-f $2"* ]]
}

# The user `fleet` of host NS, as real fleets log in: the controller's key, no password, and
# NOPASSWD sudo (Ansible's become). It exists on that host only: its own /etc/passwd, shadow,
# group and sudoers.d (bind-mounted by `ip netns exec`, as etc_netns's are); its home is HOME.
FLEET_UID=61000
fleet_user() { # NS HOME
    local etc=/etc/netns/$1
    cp -a /etc/passwd /etc/shadow /etc/group "$etc/"
    echo "fleet:x:$FLEET_UID:$FLEET_UID:fleet test user:$2:/bin/sh" >>"$etc/passwd"
    # '*': no password, yet not locked ('!'), which sshd with UsePAM no would refuse.
    echo 'fleet:*:20000:0:99999:7:::' >>"$etc/shadow"
    echo "fleet:x:$FLEET_UID:" >>"$etc/group"
    cp -a /etc/sudoers.d "$etc/sudoers.d"
    echo 'fleet ALL=(ALL:ALL) NOPASSWD: ALL' >"$etc/sudoers.d/fleet"
    chmod 0440 "$etc/sudoers.d/fleet"
    mkdir -p "$2"
    chown "$FLEET_UID:$FLEET_UID" "$2"
}

create() {
    local n=$1 dir=$2
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 200)) || die "N must be 1..200, not '$n'"
    [[ $dir == /* ]] || die "DIR must be absolute"
    dir=${dir%/}
    mkdir -p "$dir"
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty (destroy it first)"
    local net=${FLEET_NET:-198.51.100}
    [[ $net =~ ^(192\.0\.2|198\.51\.100|203\.0\.113)$ ]] ||
        die "FLEET_NET must be a documentation range (192.0.2, 198.51.100 or 203.0.113), not '$net'"
    if [[ -n $(ip -4 -o addr show to "$net.0/24") ]]; then
        die "$net.0/24 is already on a link of the root namespace (another fleet?); set FLEET_NET"
    fi
    local backend=${FLEET_IPTABLES:-nft}
    [[ $backend == nft || $backend == legacy ]] || die "FLEET_IPTABLES must be nft or legacy"
    local name=${FLEET_NAME:-uf$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')}
    [[ $name =~ ^[a-z][a-z0-9]{1,7}$ ]] || die "FLEET_NAME must be 2..8 lowercase letters/digits"
    [[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd missing (run scripts/ansible-venv.sh)"
    [[ -d /etc/ufw && -d /usr/share/ufw/iptables ]] || die "ufw is not installed (run scripts/deps.sh)"

    local net6
    case $net in 192.0.2) net6=2001:db8:2 ;; 198.51.100) net6=2001:db8:51 ;; 203.0.113) net6=2001:db8:113 ;; esac
    echo "$name" >"$dir/name"
    echo "$net" >"$dir/net"
    : >"$dir/hosts"
    : >"$dir/links"
    # From here on a failure tears down whatever was made.
    trap 'log "create failed, tearing down"; KEEP_DIR=1 destroy "$dir"' ERR

    ssh-keygen -q -t ed25519 -N '' -C "ufw-docker fleet $name" -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    # sshd refuses to start without its privilege separation directory.
    mkdir -p /run/sshd
    chmod 0755 /run/sshd

    local br=${name}br
    echo "$br" >"$dir/bridge"
    ip link add "$br" type bridge
    ip addr add "$net.1/24" dev "$br"
    ip addr add "$net6::1/64" dev "$br" nodad
    ip link set "$br" up

    local inv="$dir/inventory.ini" i ns ip t
    {
        echo "# Written by tests/fleet/hosts.sh create $n $dir"
        echo "[fleet]"
    } >"$inv"
    for ((i = 1; i <= n; i++)); do
        ns=${name}h$i ip=$net.$((10 + i))
        echo "$ns" >>"$dir/hosts"
        ip netns add "$ns"
        echo "${name}v$i" >>"$dir/links"
        ip link add "${name}v$i" type veth peer name eth0 netns "$ns"
        ip link set "${name}v$i" master "$br" up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" addr add "$net6::$((10 + i))/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via "$net.1"
        ip -n "$ns" -6 route add default via "$net6::1"

        # This host's /etc/ufw, /etc/default and /etc/alternatives (tests/fleet/etc-netns.sh),
        # with UFW not enabled and a marker naming the host.
        etc_netns "$ns" "$backend"
        sed -i 's/^ENABLED=.*/ENABLED=no/' "/etc/netns/$ns/ufw/ufw.conf"
        echo "$ns" >"/etc/netns/$ns/ufw/fleet-host"
        fleet_user "$ns" "$dir/$ns/home"

        mkdir -p "$dir/$ns"
        ssh-keygen -q -t ed25519 -N '' -C "$ns" -f "$dir/$ns/ssh_host_ed25519_key"
        cat >"$dir/$ns/sshd_config" <<CONF
# sshd of fleet host $ns (written by tests/fleet/hosts.sh)
ListenAddress $ip
Port 22
HostKey $dir/$ns/ssh_host_ed25519_key
PidFile $dir/$ns/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
# The keys live under DIR (often /tmp), which sshd's owner and mode checks would refuse.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
PrintMotd no
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
        /usr/sbin/sshd -t -f "$dir/$ns/sshd_config" || die "sshd rejects $dir/$ns/sshd_config"
        # sshd forks into the background; its sessions inherit this netns and mount namespace:
        # `ip netns exec` runs it in a mount namespace of its own, a slave of this machine's, so
        # the mounts made here stay in there (and go with its last process).
        mkdir -p "$dir/$ns/var-cache" "$dir/$ns/etc-netns"
        for t in etc usr-local; do mkdir -p "$dir/$ns/$t-upper" "$dir/$ns/$t-work"; done
        # shellcheck disable=SC2016 # expanded by the inner shell
        ip netns exec "$ns" sh -c "$HOST_MOUNTS"' && exec /usr/sbin/sshd -f "$2/sshd_config" -E "$2/sshd.log"' \
            sh "$ns" "$dir/$ns"
        echo "h$i ansible_host=$ip fleet_ipv6=$net6::$((10 + i)) fleet_netns=$ns" >>"$inv"
    done
    cat >>"$inv" <<INV

[fleet:vars]
ansible_user=root
ansible_ssh_private_key_file=$dir/id_ed25519
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_common_args='-o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
ansible_host_key_checking=false
INV

    # Each host answers over SSH, from its own namespace, with its own /etc/ufw.
    local opts t got
    opts=$(ssh_opts "$dir")
    i=0
    while read -r ns; do
        i=$((i + 1)) ip=$net.$((10 + i))
        for ((t = 0; t < 50; t++)); do
            # shellcheck disable=SC2086 # the options are words
            if got=$(ssh $opts "root@$ip" 'cat /etc/ufw/fleet-host; ip -4 -o addr show dev eth0; readlink /etc/alternatives/iptables; stat -f -c %T /etc /usr/local' 2>/dev/null); then break; fi
            sleep 0.1
        done
        [[ $got == "$ns"$'\n'*"inet $ip/24"*$'\n'"/usr/sbin/iptables-$backend"$'\n'overlayfs$'\n'overlayfs ]] ||
            die "ssh root@$ip does not see host $ns's /etc/ufw, address, iptables backend and own /etc and /usr/local (got: ${got:-no answer}; see $dir/$ns/sshd.log)"
        # shellcheck disable=SC2086 # the options are words
        got=$(ssh $opts "fleet@$ip" 'id -un; sudo -n id -un; sudo -n cat /etc/ufw/fleet-host' 2>&1) || true
        [[ $got == "fleet"$'\n'"root"$'\n'"$ns" ]] ||
            die "ssh fleet@$ip cannot become root with sudo on host $ns (got: $got; see $dir/$ns/sshd.log;" \
                "sshd reads the key as that user: DIR and every directory above it must let others through, o+x)"
    done <"$dir/hosts"
    trap - ERR
    log "created $n hosts ($name, $net.11-$net.$((10 + n))); inventory: $inv"
}

# run NS CMD...: CMD in host NS's network namespace, with that host's /etc/ufw and
# /etc/alternatives bind-mounted as `ip netns exec` does, but keeping the machine's /sys (which
# `ip netns exec` remounts, losing /sys/fs/cgroup): etc_netns_cmd in tests/fleet/etc-netns.sh.
run() {
    local ns=$1
    shift
    [[ -e /run/netns/$ns && -d /etc/netns/$ns ]] || die "no fleet host $ns"
    etc_netns_cmd "$ns"
    exec "${ETC_NETNS_CMD[@]}" "$@"
}

# enter DIR NS CMD...: CMD in the network and mount namespaces of host NS's sshd, i.e. what an
# SSH session sees: its own /etc (with /etc/ufw-docker), /usr/local and /var/cache included.
enter() {
    local dir=${1%/} ns=$2 pid
    shift 2
    pid=$(cat "$dir/$ns/sshd.pid" 2>/dev/null || true)
    our_sshd "$pid" "$dir/$ns/sshd_config" || die "no sshd of host $ns in $dir"
    exec nsenter -t "$pid" -n -m -- "$@"
}

destroy() {
    local dir=${1%/} ns pid pids br
    [[ $dir == /* ]] || die "DIR must be absolute"
    [[ -f $dir/hosts ]] || { log "nothing to destroy in $dir"; return 0; }
    while read -r ns; do
        [[ -n $ns ]] || continue
        pid=$(cat "$dir/$ns/sshd.pid" 2>/dev/null || true)
        if our_sshd "$pid" "$dir/$ns/sshd_config"; then kill -TERM "$pid" 2>/dev/null || true; fi
        if [[ -e /run/netns/$ns ]]; then
            # The sessions the sshd forked (and anything they started) live in this namespace.
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            if [[ -n $pids ]]; then
                # shellcheck disable=SC2086
                kill -TERM $pids 2>/dev/null || true
                sleep 0.5
                pids=$(ip netns pids "$ns" 2>/dev/null || true)
                # shellcheck disable=SC2086
                if [[ -n $pids ]]; then kill -KILL $pids 2>/dev/null || true; fi
            fi
            ip netns del "$ns" || log "could not delete netns $ns"
        fi
        rm -rf "/etc/netns/$ns"
    done <"$dir/hosts"
    # The root side of each veth, now: the kernel frees a deleted namespace (and its end of the
    # pair) asynchronously, and a new fleet of the same name must not find the links still there.
    local link
    while read -r link; do
        if [[ -n $link ]] && ip link show "$link" >/dev/null 2>&1; then ip link del "$link" 2>/dev/null || true; fi
    done < <(cat "$dir/links" 2>/dev/null || true)
    br=$(cat "$dir/bridge" 2>/dev/null || true)
    if [[ -n $br ]] && ip link show "$br" >/dev/null 2>&1; then ip link del "$br"; fi
    if [[ ${KEEP_DIR:-0} != 1 ]]; then rm -rf "$dir"; fi
    log "destroyed the hosts of $dir"
}

case ${1:-} in
create) (($# == 3)) || die "usage: hosts.sh create N DIR"; create "$2" "$3" ;;
destroy) (($# == 2)) || die "usage: hosts.sh destroy DIR"; destroy "$2" ;;
run) (($# >= 3)) || die "usage: hosts.sh run NS CMD..."; shift; run "$@" ;;
enter) (($# >= 4)) || die "usage: hosts.sh enter DIR NS CMD..."; shift; enter "$@" ;;
*) die "usage: hosts.sh create N DIR | hosts.sh destroy DIR | hosts.sh run NS CMD... | hosts.sh enter DIR NS CMD..." ;;
esac
