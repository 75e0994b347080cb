#!/usr/bin/env bash
# unit-test.sh: the role's `iptables` backend on a host without UFW, kept by ufw-docker.service
# under a real systemd through a Docker restart and a reboot, then removed by `state: absent`.
#
# Why it exists: on a host without UFW nothing but the role's systemd unit brings the policy
# back after Docker restarts or the machine reboots. This proves it the way it happens: h1 is a
# fleet host (tests/fleet/hosts.sh) booted by its own systemd (tests/fleet/systemd-host.sh) with
# Docker 20.10 as docker.service and a container publishing 8080 and 8081 (restart: always);
# h2 is the internet. Ansible runs the role over SSH to h1; real packets from h2 decide:
#   - before the role both ports are open (IPv4 and IPv6);
#   - after it, 8080 (allowed) is open and 8081 closed; ufw-docker.service is enabled and active
#     and runs `/usr/local/sbin/ufw_docker apply --policy /etc/ufw-docker/policy.json`, the
#     command the role installed and the policy the module saved; a second run changes nothing;
#   - a host left by an older version of the role (its unit running a copy of the binary in
#     /usr/local/lib/ufw-docker with /etc/ufw-docker/args.json) gets the new unit, and those go;
#   - `systemctl restart docker` restarts ufw-docker.service (PartOf), which reruns the module;
#   - a reboot (every process killed, the firewall flushed, systemd booted again) comes back
#     with the policy, applied by the unit alone; `ufw_docker check` on the host says in sync;
#   - `state: absent` removes the unit, the command, /etc/ufw-docker, the action plugin's cached
#     build (which the dry run never wrote and the first run did), and the rules: 8081 is open
#     again.
# Each check prints PASS or FAIL; the exit code is 0 only when nothing failed. Everything is torn
# down at the end (KEEP=1 keeps the state dir and logs).
#
# usage (as root, from anywhere): tests/fleet/unit-test.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HOSTS_SH=$REPO/tests/fleet/hosts.sh
SD=$REPO/tests/fleet/systemd-host.sh
PASS=0 FAIL=0
say() { echo "unit: $*"; }
check() { # DESCRIPTION CMD...: PASS when CMD succeeds
    local what=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); say "PASS $what"; else FAIL=$((FAIL + 1)); say "FAIL $what"; fi
}

[[ $(id -u) == 0 ]] || { echo "unit-test.sh: run as root (namespaces, systemd, sshd)" >&2; exit 1; }

VENV=$("$REPO/scripts/ansible-venv.sh" -p)
export PATH=$VENV/bin:$PATH
"$REPO/scripts/build-collection.sh" --stage >/dev/null
TESTSRV=$REPO/tests/bed/testsrv/target/x86_64-unknown-linux-musl/release/testsrv
(cd "$REPO/tests/bed/testsrv" && cargo build --quiet --release --target x86_64-unknown-linux-musl)

# Not under /tmp: the systemd host has a /tmp of its own.
DIR=$(mktemp -d /var/tmp/ufwd-unit.XXXXXX)
chmod 0711 "$DIR" # the hosts' user `fleet` reaches its key and home below (hosts.sh)
FLEET=$DIR/fleet STATE=$DIR/h1
teardown() {
    local rc=$?
    [[ -z ${H1:-} ]] || "$SD" poweroff "$H1" "$STATE" || true
    if [[ ${KEEP:-0} == 1 ]]; then
        KEEP_DIR=1 "$HOSTS_SH" destroy "$FLEET" || true
        rm -rf --one-file-system "$STATE/docker"
        say "kept $DIR (logs, inventory, playbook output)"
    else
        "$HOSTS_SH" destroy "$FLEET" || true
        rm -rf --one-file-system "$DIR"
    fi
    return $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

FLEET_NET=198.51.100 "$HOSTS_SH" create 2 "$FLEET"
mapfile -t NS <"$FLEET/hosts"
H1=${NS[0]} H2=${NS[1]}
V4=198.51.100.11 V6=2001:db8:51::11
"$SD" boot "$H1" "$STATE" "$FLEET"
on1() { "$SD" exec "$H1" "$STATE" "$@"; } # a command inside booted h1

# The container, restarted by Docker after a Docker restart and after a reboot.
TESTSRV=$TESTSRV on1 "$REPO/tests/bed/image.sh" /run/docker.sock /usr/bin/docker >/dev/null
on1 docker run -d --restart always --name web -p 8080:80 -p 8081:81 ufwd-test \
    /bin/testsrv serve --tcp 80 --tcp 81 --name web >/dev/null

probe() { # ADDRESS PORT -> open|closed, from h2 (the internet)
    ip netns exec "$H2" "$TESTSRV" probe tcp "$1" "$2" --timeout-ms 1000 2>/dev/null || true
}
ports_are() { # 8080-STATE 8081-STATE: both families, waiting up to 10 s for the container
    local t got want="$1 $1 $2 $2"
    for ((t = 0; t < 20; t++)); do
        got="$(probe $V4 8080 | cut -d' ' -f1) $(probe $V6 8080 | cut -d' ' -f1) $(probe $V4 8081 | cut -d' ' -f1) $(probe $V6 8081 | cut -d' ' -f1)"
        [[ $got == "$want" ]] && return 0
        sleep 0.5
    done
    say "  8080 v4, v6, 8081 v4, v6: want '$want', got '$got'"
    return 1
}
check "before the role, Docker publishes 8080 and 8081 to the internet" ports_are open open

cat >"$DIR/play.yml" <<'PLAY'
---
- name: The role with the iptables backend (no UFW on this host).
  hosts: h1
  gather_facts: false
  roles:
    - role: ufw_docker.ufw_docker.ufw_docker
      vars:
        ufw_docker_backend: iptables
        ufw_docker_allow:
          - port: 8080
            comment: web
PLAY
# Each run's results as JSON lines (callback_plugins/fleet_events.py), read by events.py.
export ANSIBLE_CALLBACK_PLUGINS=$REPO/tests/fleet/callback_plugins ANSIBLE_CALLBACKS_ENABLED=fleet_events
role() { # NAME [EXTRA-VARS [OPTION...]]: the role against h1; DIR/NAME.log, DIR/NAME.events
    local name=$1 extra=${2:-}
    shift $(($# < 2 ? $# : 2))
    : >"$DIR/$name.events"
    (cd "$DIR" && FLEET_EVENTS=$DIR/$name.events ANSIBLE_FORCE_COLOR=0 ansible-playbook -i "$FLEET/inventory.ini" \
        "$DIR/play.yml" ${extra:+-e "$extra"} "$@" >"$DIR/$name.log" 2>&1)
}
events() { local name=$1; shift; "$REPO/tests/fleet/events.py" "$DIR/$name.events" "$@"; } # NAME CHECK...
changed_nothing() { # NAME: no task of the run reported a change or a failure on h1
    python3 -c 'import json,sys
e=[json.loads(l) for l in open(sys.argv[1])]
bad=[(x["task"], x["status"]) for x in e if x["event"] == "result" and x["host"] == "h1" and x["status"] in ("changed", "failed", "unreachable")]
sys.exit(print("changed or failed:", bad) or 1 if bad or not e else 0)' "$DIR/$1.events"
}
unit_is() { # LOAD-STATE ENABLED ACTIVE, as systemd reports them (waiting up to 10 s while the
    # unit is still activating)
    local got t
    for ((t = 0; t < 20; t++)); do
        # sorted: ActiveState LoadState UnitFileState
        got=$(on1 systemctl show -p LoadState -p UnitFileState -p ActiveState ufw-docker.service | sort | cut -d= -f2 | paste -sd' ')
        [[ $got == "$3 $1 $2" || $got == "$3 $1 $2 " ]] && return 0
        [[ $got == activating* ]] || break
        sleep 0.5
    done
    say "  ufw-docker.service: active, load, file state: $got"
    return 1
}
invocation() { on1 systemctl show -p InvocationID --value ufw-docker.service; }
our_rules() { # number of the module's DOCKER-USER rules, both families
    local n4 n6
    n4=$(on1 iptables-save -t filter | grep -c '^-A DOCKER-USER .*ufw-docker' || true)
    n6=$(on1 ip6tables-save -t filter | grep -c '^-A DOCKER-USER .*ufw-docker' || true)
    echo $((n4 + n6))
}

check "a dry run (--check --diff) succeeds" role check "" --check --diff
check "the dry run shows the exposure table: 8080 stays open, 8081 would be blocked, both by name" \
    events check table h1 \
    '^  ipv4 tcp \*:8080 +web +open +open$' '^  ipv6 tcp \*:8080 +web +open +open$' \
    '^\* ipv4 tcp \*:8081 +web +open +blocked$' '^\* ipv6 tcp \*:8081 +web +open +blocked$'
check "the dry run changed nothing: 8080 and 8081 still open" ports_are open open
check "the dry run cached no module build on the host" test ! -e "$STATE/var-cache/ufw-docker"
check "the dry run installed no command, no unit and no policy file" test ! -e "$STATE/usr-local-upper/sbin/ufw_docker" \
    -a ! -e "$STATE/etc-upper/ufw-docker" -a ! -e "$STATE/units/ufw-docker.service"
check "the role applies (rc 0)" role apply
check "ufw-docker.service is enabled and active" unit_is loaded enabled active
check "the host runs only its own services (no boot service of the distribution)" "$SD" contained "$H1" "$STATE"
check "the unit, the command and the policy file are in place, in h1's own /etc and /usr/local" \
    test -f "$STATE/units/ufw-docker.service" -a -x "$STATE/usr-local-upper/sbin/ufw_docker" \
    -a -f "$STATE/etc-upper/ufw-docker/policy.json"
check "  the command is the x86_64 build" cmp -s "$STATE/usr-local-upper/sbin/ufw_docker" "$REPO/ansible/binaries/ufw_docker-x86_64"
check "  no copy of the binary in /usr/local/lib/ufw-docker, no args.json" \
    test ! -e "$STATE/usr-local-upper/lib/ufw-docker" -a ! -e "$STATE/etc-upper/ufw-docker/args.json"
policy_has() { # PYTHON-EXPRESSION on p, the policy file of h1 (as h1 sees it)
    on1 cat /etc/ufw-docker/policy.json | python3 -c 'import json, sys
p = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else print("policy file:", json.dumps(p)) or 1)' "$1"
}
check "  the policy file holds the role's policy (backend iptables, 8080 allowed)" \
    policy_has 'p["backend"] == "iptables" and p["allow"] == [{"port": 8080, "comment": "web"}] and "policy_file" not in p'
unit_property_has() { # PROPERTY WORD
    on1 systemctl show -p "$1" --value ufw-docker.service | tr ' ' '\n' | grep -qx "$2"
}
EXEC_START='argv[]=/usr/local/sbin/ufw_docker apply --policy /etc/ufw-docker/policy.json ;'
unit_runs_apply() { # the unit's ExecStart, as systemd loaded it
    on1 systemctl show -p ExecStart --value ufw-docker.service | grep -qF -- "$EXEC_START"
}
check "the unit runs ufw_docker apply with the saved policy" unit_runs_apply
BUILD_SHA=$(sha256sum "$REPO/ansible/binaries/ufw_docker-x86_64" | cut -d' ' -f1)
check "the action plugin cached the module build on the host, named by its hash" \
    test "$(ls -A "$STATE/var-cache/ufw-docker")" = "ufw_docker-$BUILD_SHA"
check "the unit runs after docker.service" unit_property_has After docker.service
check "the unit is part of docker.service" unit_property_has PartOf docker.service
check "the unit is wanted by docker.service (enabled)" unit_property_has WantedBy docker.service
check "after the role, 8080 is open and 8081 closed" ports_are open closed
check "a second run changes nothing" role rerun
check "  (no task changed or failed)" changed_nothing rerun

# A host of an older version of the role: its unit ran a copy of the binary with an arguments
# file. The role rewrites the unit, and removes the copy and the arguments.
on1 mkdir -p /usr/local/lib/ufw-docker
on1 cp "$REPO/ansible/binaries/ufw_docker-x86_64" /usr/local/lib/ufw-docker/ufw_docker
on1 sh -c 'echo "{\"backend\": \"iptables\", \"allow\": [{\"port\": 8080}]}" >/etc/ufw-docker/args.json'
sed -i 's|^ExecStart=.*|ExecStart=/usr/local/lib/ufw-docker/ufw_docker /etc/ufw-docker/args.json|' "$STATE/units/ufw-docker.service"
on1 systemctl daemon-reload
check "(an older role's unit, running the copy with args.json, is loaded)" \
    eval 'on1 systemctl show -p ExecStart --value ufw-docker.service | grep -qF "argv[]=/usr/local/lib/ufw-docker/ufw_docker /etc/ufw-docker/args.json ;"'
check "the role over an older version's files applies (rc 0)" role upgrade
check "  rewriting the unit" events upgrade status h1 "Install ufw-docker.service" changed
check "  which runs ufw_docker apply again" unit_runs_apply
check "  the copy in /usr/local/lib/ufw-docker and args.json are gone, the policy file stays" \
    eval 'on1 test ! -e /usr/local/lib/ufw-docker -a ! -e /etc/ufw-docker/args.json -a -f /etc/ufw-docker/policy.json'
check "  ufw-docker.service is enabled and active" unit_is loaded enabled active

before=$(invocation)
on1 systemctl restart docker.service
check "a Docker restart restarts ufw-docker.service (PartOf)" test "$(invocation)" != "$before"
check "ufw-docker.service is active after the Docker restart" unit_is loaded enabled active
check "after the Docker restart, 8080 is open and 8081 closed" ports_are open closed

"$SD" poweroff "$H1" "$STATE"
check "the poweroff emptied the firewall" test "$(ip netns exec "$H1" iptables-save -t filter | grep -c '^-A ' || true)" = 0
"$SD" boot "$H1" "$STATE" "$FLEET"
check "after the reboot, ufw-docker.service ran on its own" unit_is loaded enabled active
check "after the reboot, the module's rules are live in both families" test "$(our_rules)" -gt 0
check "after the reboot, 8080 is open and 8081 closed" ports_are open closed
check "ufw_docker check on h1 after the reboot: in sync with the saved policy (exit 0)" on1 /usr/local/sbin/ufw_docker check

check "state: absent applies (rc 0)" role absent '{"ufw_docker_state": "absent"}'
check "the unit is gone" unit_is not-found "" inactive
check "the unit, the command and /etc/ufw-docker are removed" test ! -e "$STATE/units/ufw-docker.service" \
    -a ! -e "$STATE/usr-local-upper/sbin/ufw_docker" -a ! -e "$STATE/etc-upper/ufw-docker"
check "  as h1 sees it too" on1 test ! -e /usr/local/sbin/ufw_docker -a ! -e /etc/ufw-docker -a ! -e /usr/local/lib/ufw-docker
check "no rule of the module is left" test "$(our_rules)" = 0
check "the cache of module builds is removed too" test ! -e "$STATE/var-cache/ufw-docker"
check "after state: absent, 8080 and 8081 are open again (Docker's default)" ports_are open open

if ((FAIL)); then
    say "see the logs in $DIR (rerun with KEEP=1 to keep them)"
    KEEP=1
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
