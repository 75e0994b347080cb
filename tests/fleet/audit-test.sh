#!/usr/bin/env bash
# audit-test.sh: the fleet exposure audit (ufw_docker.ufw_docker.audit) over SSH, proven by real
# packets, a real browser and byte-for-byte comparisons of every host.
#
# Why it exists: the audit tells a security team what the internet reaches on every host now and
# what the role's policy will change, and promises to change nothing while it asks. Both claims
# are checked here against the hosts themselves. Six inventory hosts (tests/fleet/hosts.sh
# namespaces, FLEET_NAME ufaud):
#   h1     a Docker 20.10 host (tests/bed/dockerd.sh in its namespace) with UFW enabled (deny
#          incoming, SSH allowed) and two containers: web publishing 8080/tcp, 8081/tcp and
#          5353/udp on every address, IPv4 and IPv6, and admin publishing 8082/tcp on h1's IPv4
#          address only; an older policy applied by the module (8081 open, the rest blocked)
#   h2     broken: its after.rules has a BEGIN marker and no END marker
#   h3     unreachable: its sshd is stopped
#   h4     the office: converged by the role with the policy (in sync), nothing published;
#          the one source 8082 is open to after the policy
#   h5     the internet: never converged (drifted), nothing published
#   ghost  an inventory address nobody answers (FLEET_NET.99)
# The policy (the role's variables): 8080/tcp and 5353/udp open, 8082 from h4 only, a trusted
# 10.20.0.0/16. Checked:
#   - the audit, run without --check, exits 0, ran the module in check mode on every host it
#     reached, and writes report.json, report.html and report.md;
#   - every host is in report.json with the right status and reason (h2 failed on its markers,
#     h3 and ghost unreachable), h1 and h5 drifted, h4 in sync, Docker's firewall backend, the
#     totals equal to the hosts' counts, h1's rows named by their containers;
#   - nothing changed on any host: iptables-save and ip6tables-save of every table (chain
#     counters and the date comment aside) and every file of the host's own /etc (/etc/ufw,
#     /etc/default, ...), its /etc and /usr/local layers and its /var/cache byte-identical;
#   - h1's rows now, as report.json says, match real packets from h5 (the internet) and h4 (the
#     office), each reply naming the container; h1's verdicts now and after are the scenario's;
#   - report.html in headless Chromium: a screenshot, and the rendered DOM holds the totals, every
#     row of report.json and every failed host's reason, with the page's script run (under its
#     CSP); opened as report.html#q=h1&after=blocked it shows exactly those rows; report.md holds
#     every row;
#   - then the role applied for real on h1 with the same variables: every row's "after" matches
#     real packets, and a second audit, run with --check this time, finds h1 in sync with "now"
#     equal to the first "after", and changes nothing either.
# Each check prints PASS or FAIL; the last line is "N passed, N failed"; the exit code is 0 only
# when nothing failed. The hosts and h1's dockerd are always torn down; the report, the
# screenshot, the rendered DOM and the playbooks' logs stay in the state directory printed at
# the end (KEEP=1 keeps everything), and the screenshot is also copied to
# /tmp/ufw-docker-audit-screenshot.png.
#
# usage (as root, from anywhere): tests/fleet/audit-test.sh
# env: FLEET_NET (default: the first of 198.51.100, 192.0.2, 203.0.113 that this machine does
#      not route already and that holds none of its package registries' addresses),
#      FLEET_NAME (default ufaud)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HOSTS_SH=$REPO/tests/fleet/hosts.sh
CHECK=$REPO/tests/fleet/audit-check.py
PASS=0 FAIL=0
say() { echo "audit: $*"; }
check() { # DESCRIPTION CMD...: PASS when CMD succeeds
    local what=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); say "PASS $what"; else FAIL=$((FAIL + 1)); say "FAIL $what"; fi
}

[[ $(id -u) == 0 ]] || { echo "audit-test.sh: run as root (namespaces, dockerd, sshd)" >&2; exit 1; }

# Everything this test installs or builds, before any host exists: a fleet's bridge may take the
# route to a package registry while it is up.
VENV=$("$REPO/scripts/ansible-venv.sh" -p)
export PATH=$VENV/bin:$PATH
"$REPO/scripts/apt-ensure.sh" audit-test chromium fonts-dejavu-core docker.io containerd runc \
    busybox-static iptables ufw iproute2
"$REPO/scripts/build-collection.sh" --stage >/dev/null
TESTSRV=$REPO/tests/bed/testsrv/target/x86_64-unknown-linux-musl/release/testsrv
(cd "$REPO/tests/bed/testsrv" && cargo build --quiet --release --target x86_64-unknown-linux-musl)

# The hosts' /24: not routed here already, and holding none of the addresses this machine reaches
# its registries and resolver at (a fleet's bridge would take their route while it is up).
pick_net() {
    local net registries
    registries=$( (getent ahostsv4 deb.debian.org pypi.org files.pythonhosted.org index.crates.io static.crates.io 2>/dev/null || true) |
        awk '{print $1}'; awk '$1 == "nameserver" {print $2}' /etc/resolv.conf)
    for net in 198.51.100 192.0.2 203.0.113; do
        ip -4 route show match "$net.1" | grep -qv '^default' && continue
        grep -q "^${net//./\\.}\." <<<"$registries" && continue
        echo "$net"
        return 0
    done
    echo "audit-test.sh: no documentation /24 is free here (see FLEET_NET)" >&2
    return 1
}
NET=${FLEET_NET:-$(pick_net)}
case $NET in 192.0.2) NET6=2001:db8:2 ;; 198.51.100) NET6=2001:db8:51 ;; 203.0.113) NET6=2001:db8:113 ;;
*) echo "audit-test.sh: FLEET_NET must be a documentation /24, not '$NET'" >&2; exit 1 ;; esac
NAME=${FLEET_NAME:-ufaud}

STATE=$(mktemp -d /tmp/ufwd-audit.XXXXXX)
chmod 0755 "$STATE" # the hosts' user `fleet` reaches its key below (hosts.sh)
FLEET=$STATE/fleet DOCKER=$STATE/d OUT=$STATE/out
mkdir -p "$OUT"
teardown() {
    local rc=$?
    if [[ -e $DOCKER/dockerd.pid || -e $DOCKER/containerd.pid ]]; then
        "$REPO/tests/bed/dockerd.sh" stop "${NS[0]}" "$DOCKER" || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        KEEP_DIR=1 "$HOSTS_SH" destroy "$FLEET" || true
        say "kept $STATE (hosts' state, logs, report, screenshot)"
    else
        "$HOSTS_SH" destroy "$FLEET" || true
        rm -rf --one-file-system "$DOCKER" "$STATE/chromium"
        say "the report, screenshot and logs: $OUT"
    fi
    return $rc
}
NS=()
trap teardown EXIT
trap 'exit 130' INT TERM HUP

FLEET_NET=$NET FLEET_NAME=$NAME "$HOSTS_SH" create 5 "$FLEET"
mapfile -t NS <"$FLEET/hosts" # NS[0] is h1's namespace, ... NS[4] is h5's
on() { local i=$1; shift; ip netns exec "${NS[i - 1]}" "$@"; } # on HOSTNUMBER CMD...
V4() { echo "$NET.$((10 + $1))"; }
V6() { echo "$NET6::$((10 + $1))"; }
cd "$STATE" # no ansible.cfg from the caller's working directory; the venv links the collection

# h1: forwarding, UFW (deny incoming, SSH allowed), Docker 20.10, the test image, two containers.
on 1 sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
on 1 sh -c 'ufw default deny incoming >/dev/null && ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null'
BED_DOCKERD_ARGS="--bip 192.0.2.1/25" BED_V6_CIDR=2001:db8:d0c::/64 \
    "$HOSTS_SH" run "${NS[0]}" "$REPO/tests/bed/dockerd.sh" start "${NS[0]}" "$DOCKER" 20 </dev/null 9>&-
TESTSRV=$TESTSRV "$REPO/tests/bed/image.sh" "$DOCKER/docker.sock" "$DOCKER/docker-client" >/dev/null
"$DOCKER/docker" run -d --name web -p 8080:80 -p 8081:81 -p 5353:53/udp ufwd-test \
    /bin/testsrv serve --tcp 80 --tcp 81 --udp 53 --name web >/dev/null
"$DOCKER/docker" run -d --name admin -p "$(V4 1):8082:82" ufwd-test /bin/testsrv serve --tcp 82 --name admin >/dev/null

probe() { # PROBER-HOSTNUMBER PROTO ADDRESS PORT -> "open NAME" or "closed"
    on "$1" "$TESTSRV" probe "$2" "$3" "$4" --timeout-ms 1000 2>/dev/null || true
}
for ((t = 0; t < 20; t++)); do # the containers answer (before any policy: Docker's default, open)
    [[ $(probe 5 tcp "$(V4 1)" 8082) == "open admin" && $(probe 5 udp "$(V6 1)" 5353) == "open web" ]] && break
    sleep 0.5
done

# The inventory of the audit: the fleet, h1's Docker API for the names, and a host nobody answers.
INV=$STATE/audit.ini
sed -e "s#^h1 .*#& ufw_docker_docker_host=unix://$DOCKER/docker.sock#" \
    -e "s#^h5 .*#&\nghost ansible_host=$NET.99#" "$FLEET/inventory.ini" >"$INV"
# The role's policy: the audit's "after", and what the role applies to h4 and, at the end, h1.
cat >"$STATE/policy.json" <<JSON
{"ufw_docker_allow": [{"port": 8080, "comment": "web"}, {"port": 5353, "proto": "udp", "comment": "dns"},
                      {"port": 8082, "from": ["$(V4 4)/32", "$(V6 4)/128"], "comment": "admin from the office"}],
 "ufw_docker_trusted_networks": ["10.20.0.0/16"]}
JSON
export ANSIBLE_CALLBACK_PLUGINS=$REPO/tests/fleet/callback_plugins ANSIBLE_CALLBACKS_ENABLED=fleet_events
run_logged() { # NAME CMD...: CMD with its output in OUT/NAME.log and its results in OUT/NAME.events
    local name=$1
    shift
    : >"$OUT/$name.events"
    FLEET_EVENTS=$OUT/$name.events ANSIBLE_FORCE_COLOR=0 "$@" >"$OUT/$name.log" 2>&1
}
role() { # NAME HOST: the role for real on HOST with the policy (site.yml)
    run_logged "$1" ansible-playbook -i "$INV" "$REPO/ansible/playbooks/site.yml" --limit "$2" -e "@$STATE/policy.json"
}

# h1's older policy, applied by the module (8081 open, everything else published blocked).
check "h1 had an older policy applied (the module, 8081 open)" \
    run_logged h1-old-policy ansible -i "$INV" h1 -m ufw_docker.ufw_docker.ufw_docker -a '{"allow": [{"port": 8081}]}'
# h2 breaks; h3 stops answering; h4 is converged with the policy.
on 2 sh -c 'printf "%s\n" "# BEGIN UFW-DOCKER MANAGED BLOCK sha256=00" "-A DOCKER-USER -j RETURN" >>/etc/ufw/after.rules'
kill "$(cat "$FLEET/${NS[2]}/sshd.pid")"
check "the role converged h4 with the policy" role h4-converge h4

# What each host is, byte for byte, before the audit.
snapshot() { # HOSTNUMBER DIR: the host's rules (all tables, both families) and files into DIR
    local ns=${NS[$1 - 1]} dir=$2 d
    mkdir -p "$dir"
    # A chain's packet counters and the save's date are not state of the firewall.
    on "$1" iptables-save | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//' >"$dir/iptables"
    on "$1" ip6tables-save | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//' >"$dir/ip6tables"
    : >"$dir/files"
    for d in "/etc/netns/$ns" "$FLEET/$ns/etc-upper" "$FLEET/$ns/usr-local-upper" "$FLEET/$ns/var-cache"; do
        [[ -d $d ]] || continue
        (cd "$d" && find . -printf '%p %y %m %u %l\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum) |
            sed "s#^#$d #" >>"$dir/files"
    done
}
unchanged() { # HOSTNUMBER BEFORE AFTER
    local f
    for f in iptables ip6tables files; do
        cmp -s "$2/$f" "$3/$f" || { say "  h$1 $f changed:"; diff "$2/$f" "$3/$f" | head -20; return 1; }
    done
}
for i in 1 2 3 4 5; do snapshot "$i" "$STATE/before/h$i"; done
snapshots_hold_h1() {
    grep -q -- "^-A DOCKER-USER .*--ctorigdstport 8081" "$STATE/before/h1/iptables" &&
        grep -q "/ufw/after.rules f " "$STATE/before/h1/files"
}
check "the snapshots hold h1's rules and files (sanity of the comparison)" snapshots_hold_h1

# 1. The audit, without --check.
REPORT=$OUT/report
rc=0
run_logged audit ansible-playbook -i "$INV" ufw_docker.ufw_docker.audit -e "@$STATE/policy.json" \
    -e "ufw_docker_audit_dir=$REPORT" || rc=$?
say "audit: rc=$rc (output: $OUT/audit.log)"
check "the audit succeeds (rc 0) with a failed and two unreachable hosts" test "$rc" = 0
check "it writes report.json, report.html and report.md" test -s "$REPORT/report.json" -a -s "$REPORT/report.html" -a -s "$REPORT/report.md"
J=$REPORT/report.json
MODULE_TASK="Read what the internet reaches on this host"
check "the module ran in check mode on every host that answered, without --check" \
    "$CHECK" checkmode "$OUT/audit.events" "$MODULE_TASK" h1 h4 h5
for i in 1 2 3 4 5; do
    snapshot "$i" "$STATE/after-audit/h$i"
    check "the audit changed nothing on h$i (rules of every table, both families; every file)" \
        unchanged "$i" "$STATE/before/h$i" "$STATE/after-audit/h$i"
done
host_is() { # HOST STATUS IN_SYNC BACKEND: the host's entry in report.json
    "$CHECK" status "$J" "$1" "$2" && "$CHECK" sync "$J" "$1" "$3" && "$CHECK" backend "$J" "$1" "$4"
}
without_docker() { # HOST IN_SYNC: ok, no Docker chain, nothing published
    host_is "$1" ok "$2" none && "$CHECK" verdicts "$J" "$1" now
}
check "h1: ok, drifted, Docker's iptables backend" host_is h1 ok false iptables
check "h2: failed, with the module's reason (the unclosed block)" \
    "$CHECK" status "$J" h2 failed 'opens a managed block that is never closed'
check "h3: unreachable, with the reason (connection refused)" "$CHECK" status "$J" h3 unreachable 'Connection refused'
check "ghost: unreachable, with the reason (no route to host)" "$CHECK" status "$J" ghost unreachable 'No route to host|timed out'
check "h4: ok, in sync (the role converged it), no Docker, nothing published" without_docker h4 true
check "h5: ok, drifted, no Docker, nothing published" without_docker h5 false
check "the totals are the hosts' counts" "$CHECK" totals "$J"
check "h1's rows name their containers (Docker's API)" "$CHECK" named "$J" h1
check "h1 now: 8081 open (the older policy), the rest blocked" \
    "$CHECK" verdicts "$J" h1 now ipv4/tcp/8080=blocked ipv6/tcp/8080=blocked ipv4/tcp/8081=open ipv6/tcp/8081=open \
    ipv4/udp/5353=blocked ipv6/udp/5353=blocked ipv4/tcp/8082=blocked
check "h1 after: 8080 and 5353 open, 8081 blocked, 8082 restricted to the office" \
    "$CHECK" verdicts "$J" h1 after ipv4/tcp/8080=open ipv6/tcp/8080=open ipv4/tcp/8081=blocked ipv6/tcp/8081=blocked \
    ipv4/udp/5353=open ipv6/udp/5353=open "ipv4/tcp/8082=restricted:$(V4 4)/32"

packets_match() { # REPORT WHEN: every row of h1, probed from h5 and h4, is what REPORT says WHEN
    local report=$1 when=$2 prober proto addr port name want got bad=0
    for prober in 5 4; do
        while read -r proto addr port name want; do
            got=$(probe "$prober" "$proto" "$addr" "$port")
            [[ $want == open ]] && want="open $name"
            if [[ $got != "$want" ]]; then
                say "  from h$prober: $proto $addr $port: report.json ($when) says '$want', the packet '$got'"
                bad=1
            fi
        done < <("$CHECK" probes "$report" h1 "$when" "$(V4 1)" "$(V6 1)" "$(V4 "$prober")" "$(V6 "$prober")")
    done
    return $bad
}
check "h1 now: every row of report.json matches real packets from the internet (h5) and the office (h4)" \
    packets_match "$J" now

# 2. The page in a real browser, and the Markdown.
chromium_run() { # ARGS...: headless Chromium as root, its profile in STATE, nothing in root's home
    HOME=$STATE/chromium timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$STATE/chromium" --hide-scrollbars --force-device-scale-factor=1 "$@" 2>>"$OUT/chromium.log"
}
chromium_run --window-size=1280,1500 --screenshot="$OUT/report.png" "file://$REPORT/report.html" >/dev/null
check "Chromium took a screenshot of report.html (1280x1500, not blank)" "$CHECK" png "$OUT/report.png" 1280 1500
chromium_run --dump-dom "file://$REPORT/report.html" >"$OUT/report.dom.html"
check "the rendered page shows the totals, every row of report.json and every failed host's reason; its script ran" \
    "$CHECK" dom "$OUT/report.dom.html" "$J"
chromium_run --dump-dom "file://$REPORT/report.html#q=h1&after=blocked" >"$OUT/report.h1-blocked.dom.html"
check "opened as #q=h1&after=blocked, the page shows exactly h1's rows blocked after the policy" \
    "$CHECK" dom-filter "$OUT/report.h1-blocked.dom.html" "$J" h1 blocked
check "report.md has the totals and every row" "$CHECK" md "$REPORT/report.md" "$J"
cp "$OUT/report.png" /tmp/ufw-docker-audit-screenshot.png

# 3. The policy applied for real on h1: "after" comes true, packet for packet.
cp -r "$REPORT" "$OUT/report-first"
check "the role applies the policy to h1 (rc 0)" role h1-apply h1
snapshot 1 "$STATE/after-apply/h1"
changed() { ! unchanged "$@" >/dev/null; }
check "  which the comparison sees: h1's rules and files differ from before (it is not blind)" \
    changed 1 "$STATE/before/h1" "$STATE/after-apply/h1"
check "h1 after the role: every row matches report.json's 'after', real packets from h5 and h4" \
    packets_match "$OUT/report-first/report.json" after
for i in 1 2 3 4 5; do snapshot "$i" "$STATE/before-again/h$i"; done
rc=0
run_logged audit-again ansible-playbook -i "$INV" ufw_docker.ufw_docker.audit --check -e "@$STATE/policy.json" \
    -e "ufw_docker_audit_dir=$REPORT" || rc=$?
check "a second audit, with --check (rc $rc): h1 in sync, every row now what the first audit said after" \
    "$CHECK" carried "$J" "$OUT/report-first/report.json" h1
check "  and it succeeded (rc 0)" test "$rc" = 0
for i in 1 2 3 4 5; do
    snapshot "$i" "$STATE/after-again/h$i"
    check "the second audit changed nothing on h$i either" unchanged "$i" "$STATE/before-again/h$i" "$STATE/after-again/h$i"
done

if ((FAIL)); then
    say "see the logs in $OUT (rerun with KEEP=1 to keep the hosts' state too)"
fi
say "state: $STATE; report: $REPORT; screenshot: $OUT/report.png (and /tmp/ufw-docker-audit-screenshot.png)"
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
