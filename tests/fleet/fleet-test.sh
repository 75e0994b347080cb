#!/usr/bin/env bash
# fleet-test.sh: the rollout playbook against a fleet of five SSH hosts, one of them broken.
#
# Why it exists: a firewall change rolled out to many hosts must stop at the first host it fails
# on, before it reaches the rest. This runs ansible/playbooks/rollout.yml over real SSH to five
# network-namespace hosts (tests/fleet/hosts.sh) in batches of 1, 2 and 2, with h3 (in the second
# batch) broken on purpose: its after.rules has a BEGIN marker of the managed block and no END
# marker, which the module refuses to touch. It checks that
#   - the preview (the check-mode play, run alone with --tags preview) prints a diff and changes
#     nothing on any host;
#   - the rollout fails, and stops at the second batch: h1 (batch 1) and h2 (batch 2) are
#     converged, h3's files are byte-identical and its DOCKER-USER empty, and h4 and h5
#     (batch 3) are untouched: files byte-identical, no DOCKER-USER rules, no cached build;
#   - the action plugin's cache on h1: one build named by its hash, a rerun in one SSH command
#     copying nothing, a damaged build copied again;
#   - on h4, as real fleets run it: logged in as the user `fleet` with sudo (become), a dry run
#     that touches nothing, a real run, a rerun in one SSH command; the arguments reach the
#     module on stdin, never in a command line;
#   - the ufw_docker command on a host the role converged (issue 12), installed by the module
#     itself (command_path) from the build it runs: h1 answers `ssh root@h1
#     ufw_docker status` with the role's policy, saved by the module in /etc/ufw-docker/policy.json
#     (h1's own: the hosts' /etc and /usr/local are overlays, hosts.sh); `ufw_docker check` exits
#     0, 3 after a hand edit (DOCKER-USER flushed), 0 again after `ufw_docker apply`; a rerun of
#     the role changes nothing; and on h4, after the role as `fleet` with sudo, `sudo ufw_docker
#     status` says in sync.
# Each check prints PASS or FAIL; the last line is "N passed, N failed"; the exit code is 0 only
# when nothing failed. The hosts are always torn down (KEEP=1 keeps the state dir and logs).
#
# usage (as root, from anywhere): tests/fleet/fleet-test.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HOSTS_SH=$REPO/tests/fleet/hosts.sh
PASS=0 FAIL=0
say() { echo "fleet: $*"; }
ok() { PASS=$((PASS + 1)); say "PASS $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL $*"; }
check() { # DESCRIPTION CMD...: PASS when CMD succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

[[ $(id -u) == 0 ]] || { echo "fleet-test.sh: run as root (network namespaces, sshd)" >&2; exit 1; }

VENV=$("$REPO/scripts/ansible-venv.sh" -p)
export PATH=$VENV/bin:$PATH
"$REPO/scripts/build-collection.sh" --stage >/dev/null

DIR=$(mktemp -d /tmp/ufwd-fleet.XXXXXX)
rmdir "$DIR" # hosts.sh create wants a new or empty directory; it makes it again
teardown() {
    local rc=$?
    if [[ ${KEEP:-0} == 1 ]]; then
        KEEP_DIR=1 "$HOSTS_SH" destroy "$DIR" || true
        say "kept $DIR (logs, inventory, playbook output)"
    else
        "$HOSTS_SH" destroy "$DIR" || true
    fi
    return $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

"$HOSTS_SH" create 5 "$DIR"
INV=$DIR/inventory.ini
mapfile -t NS <"$DIR/hosts" # NS[0] is h1's namespace, ... NS[4] is h5's
on() { local i=$1; shift; ip netns exec "${NS[i - 1]}" "$@"; } # on HOSTNUMBER CMD...

# h3 breaks: a BEGIN marker without an END marker.
on 3 sh -c 'printf "%s\n" "# BEGIN UFW-DOCKER MANAGED BLOCK sha256=00" "-A DOCKER-USER -j RETURN" >>/etc/ufw/after.rules'

# h1 publishes 8080 the way Docker does (its nat DNAT rule), for the preview's exposure table.
on 1 sh -c 'iptables -t nat -N DOCKER && iptables -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80'

fingerprint() { # HOSTNUMBER -> sha256 of both rule files
    on "$1" sha256sum /etc/ufw/after.rules /etc/ufw/after6.rules | awk '{print $1}' | paste -sd' '
}
docker_user_rules() { # HOSTNUMBER -> number of live DOCKER-USER rules, both families
    local n4 n6
    n4=$(on "$1" iptables-save -t filter | grep -c '^-A DOCKER-USER ' || true)
    n6=$(on "$1" ip6tables-save -t filter | grep -c '^-A DOCKER-USER ' || true)
    echo $((n4 + n6))
}
declare -A BEFORE
for i in 1 2 3 4 5; do BEFORE[$i]=$(fingerprint "$i"); done

cached() { # HOSTNUMBER -> the files in the host's cache of module builds (its own /var/cache)
    ls -A "$DIR/${NS[$1 - 1]}/var-cache/ufw-docker" 2>/dev/null | paste -sd' '
}
untouched() { # HOSTNUMBER: files byte-identical to before, no DOCKER-USER rules, no cached build
    [[ $(fingerprint "$1") == "${BEFORE[$1]}" ]] && [[ $(docker_user_rules "$1") == 0 ]] &&
        [[ -z $(cached "$1") ]] && [[ -z $(installed "$1") ]]
}
installed() { # HOSTNUMBER -> what the role installed in the host's own /etc and /usr/local
    # (the upper layers of its overlays, hosts.sh): its policy file and its command
    local ns=${NS[$1 - 1]} f
    for f in "$DIR/$ns/etc-upper/ufw-docker/policy.json" "$DIR/$ns/usr-local-upper/sbin/ufw_docker"; do
        [[ ! -e $f ]] || echo "$f"
    done
}
converged() { # HOSTNUMBER: one complete block in each file, the allowed port live in both families
    local f
    for f in /etc/ufw/after.rules /etc/ufw/after6.rules; do
        [[ $(on "$1" grep -c '^# BEGIN UFW-DOCKER MANAGED BLOCK sha256=[0-9a-f]\{64\}$' "$f") == 1 ]] || return 1
        [[ $(on "$1" grep -c '^# END UFW-DOCKER MANAGED BLOCK$' "$f") == 1 ]] || return 1
    done
    on "$1" iptables-save -t filter | grep -q -- '--ctorigdstport 8080 .*-j RETURN$' &&
        on "$1" ip6tables-save -t filter | grep -q -- '--ctorigdstport 8080 .*-j RETURN$'
}

cd "$DIR" # no ansible.cfg from the caller's working directory; the venv links the collection
playbook=(ansible-playbook -i "$INV" "$REPO/ansible/playbooks/rollout.yml"
    -e "@$REPO/tests/fleet/fleet-vars.yml" -e '{"ufw_docker_rollout_serial": [1, 2, 2]}')
# Every run also writes its results as JSON lines (callback_plugins/fleet_events.py), which the
# checks read through events.py; the human output is kept as each run's log.
export ANSIBLE_CALLBACK_PLUGINS=$REPO/tests/fleet/callback_plugins ANSIBLE_CALLBACKS_ENABLED=fleet_events
export ANSIBLE_LOAD_CALLBACK_PLUGINS=1 # ad-hoc runs too
events() { "$REPO/tests/fleet/events.py" "$FLEET_EVENTS" "$@"; } # events.py on the last run's events
run_logged() { # NAME CMD...: CMD with its output in DIR/NAME.log and its events in DIR/NAME.events
    local name=$1
    shift
    export FLEET_EVENTS=$DIR/$name.events
    : >"$FLEET_EVENTS"
    ANSIBLE_FORCE_COLOR=0 "$@" >"$DIR/$name.log" 2>&1
}
MODULE_TASK="Keep Docker's published ports behind UFW, in DOCKER-USER"

# 1. The preview alone: a diff for every healthy host, nothing changed anywhere.
t0=$SECONDS
rc=0
run_logged preview "${playbook[@]}" --tags preview || rc=$?
say "preview: rc=$rc in $((SECONDS - t0))s (output: $DIR/preview.log)"
check "the preview succeeds (h3's failure is reported, not fatal)" test "$rc" = 0
check "the preview's diff holds the after.rules block" \
    events diff h1 "$MODULE_TASK" '^# BEGIN UFW-DOCKER MANAGED BLOCK sha256=[0-9a-f]{64}$'
check "the preview's diff holds the live DOCKER-USER chain" \
    events diff h1 "$MODULE_TASK" '^DOCKER-USER ipv4 \(live, before\)$'
check "the preview reports h3's broken block as a failure, ignored" \
    eval 'events status h3 "$MODULE_TASK" failed ignored && events msg h3 "$MODULE_TASK" "opens a managed block that is never closed"'
check "the preview shows h1's exposure table (its published 8080)" \
    events table h1 '^  ipv4 tcp \*:8080 +172\.17\.0\.2:80 +open +open$'
check "the preview shows h2's exposure table (nothing published)" \
    events table h2 '^no port is published by Docker on this host$'
for i in 1 2 3 4 5; do check "the preview changed nothing on h$i" untouched "$i"; done

# 2. The rollout: batches [h1] [h2 h3] [h4 h5]; h3 fails, so the play ends after batch 2.
t0=$SECONDS
rc=0
run_logged rollout "${playbook[@]}" || rc=$?
say "rollout: rc=$rc in $((SECONDS - t0))s (output: $DIR/rollout.log)"
check "the rollout fails (rc=$rc)" test "$rc" -ne 0
check "h3 fails on its unbalanced markers" \
    eval 'events status h3 "$MODULE_TASK" failed && events msg h3 "$MODULE_TASK" "opens a managed block that is never closed"'
# The module task starts once in the preview play (all hosts) and once per batch after it.
check "the batches were [h1] [h2 h3]" \
    test "$(events batches "$MODULE_TASK")" = '[["h1", "h2", "h3", "h4", "h5"], ["h1"], ["h2", "h3"]]'
check "the play stopped at h3's batch" events stopped
check "h1 (batch 1) is converged" converged 1
check "h2 (batch 2, healthy) is converged" converged 2
check "h3's files are byte-identical to before" test "$(fingerprint 3)" = "${BEFORE[3]}"
check "h3's DOCKER-USER is empty" test "$(docker_user_rules 3)" = 0
check "h4 (batch 3) is untouched" untouched 4
check "h5 (batch 3) is untouched" untouched 5

# 3. The action plugin's cache: the rollout left h1 the x86_64 build, named by its SHA-256; a run
# then costs one SSH command; a damaged build is noticed by its hash and sent again (on the run's
# standard input, ahead of the arguments: a second SSH command, no file copied).
BUILD_SHA=$(sha256sum "$REPO/ansible/binaries/ufw_docker-x86_64" | cut -d' ' -f1)
check "h1 holds one cached build, named by its SHA-256" test "$(cached 1)" = "ufw_docker-$BUILD_SHA"
module_on_h1() { # NAME: the module alone on h1, same policy as the role's, -vvv
    run_logged "$1" ansible -i "$INV" h1 -m ufw_docker.ufw_docker.ufw_docker -vvv \
        -a '{"allow": "{{ ufw_docker_allow }}", "trusted_networks": "{{ ufw_docker_trusted_networks }}"}' \
        -e "@$REPO/tests/fleet/fleet-vars.yml"
}
# What went over SSH is in -vvv's connection lines only (no result holds it).
ssh_commands() { grep -c '^<[0-9.]*> SSH: EXEC ' "$DIR/$1.log"; }
ssh_puts() { grep -c '^<[0-9.]*> PUT ' "$DIR/$1.log"; }
AD_HOC_TASK=ufw_docker.ufw_docker.ufw_docker # an ad-hoc run's task is named after its module
check "a rerun on h1 succeeds with nothing to change" module_on_h1 cached
check "  (changed: false)" events status h1 "$AD_HOC_TASK" ok
check "  in one SSH command, copying nothing" test "$(ssh_commands cached) $(ssh_puts cached)" = "1 0"
H1_BUILD=$DIR/${NS[0]}/var-cache/ufw-docker/ufw_docker-$BUILD_SHA
build_intact() { [[ $(cached 1) == "ufw_docker-$BUILD_SHA" ]] && echo "$BUILD_SHA  $H1_BUILD" | sha256sum -c --status; }
printf x >>"$H1_BUILD"
check "with its cached build damaged, a run on h1 still succeeds" module_on_h1 damaged
check "  (changed: false)" events status h1 "$AD_HOC_TASK" ok
check "  sending the build once more, on the run's stdin: two SSH commands, no file copied" \
    test "$(ssh_commands damaged) $(ssh_puts damaged)" = "2 0"
check "  and caching it again, intact" build_intact

# 4. As real fleets run it: logged in as the user `fleet`, root through sudo (become), on h4,
# which nothing touched so far. The arguments reach the module on stdin through sudo: a word of
# them (the allow entry's comment) is in the rules the module returns, never in a command the
# connection ran (the -vvv log shows each one).
module_on_h4() { # NAME [OPTION...]: the module on h4 as `fleet` with sudo, -vvv
    local name=$1
    shift
    # extra vars: the inventory's ansible_user=root would win over -u
    run_logged "$name" ansible -i "$INV" h4 -e ansible_user=fleet --become -m ufw_docker.ufw_docker.ufw_docker -vvv \
        -a '{"allow": [{"port": 8080, "comment": "canary-f7c1"}]}' "$@"
}
as_fleet_with_sudo() { # NAME: the connection lines show an SSH session of `fleet` and a sudo to root
    grep -q 'ESTABLISH SSH CONNECTION FOR USER: fleet' "$DIR/$1.log" &&
        grep -q "^<[0-9.]*> SSH: EXEC .*sudo -H -S -n  *-u root" "$DIR/$1.log"
}
args_stay_off_commands() { # NAME: the comment is in the rules the module returned, in no command
    events status h4 "$AD_HOC_TASK" changed &&
        python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]["result"]; sys.exit(not any("canary-f7c1" in x for x in r["rules"]["ipv4"]))' "$DIR/$1.events" &&
        ! grep '^<[0-9.]*> SSH: EXEC ' "$DIR/$1.log" | grep -q 'canary-f7c1'
}
check "as fleet with sudo, a dry run on h4 succeeds, saying it would change" module_on_h4 become-check --check
check "  (changed), logged in as fleet, root through sudo" \
    eval 'events status h4 "$AD_HOC_TASK" changed && as_fleet_with_sudo become-check'
check "  and h4 is untouched (no cached build either)" untouched 4
check "as fleet with sudo, a real run converges h4" module_on_h4 become-apply
check "  (changed), the allowed port live in both families and in both files" \
    eval 'events status h4 "$AD_HOC_TASK" changed && converged 4'
check "  the arguments went on stdin: in the result, in no command" args_stay_off_commands become-apply
check "  the build too, through sudo: two SSH commands (the miss, the run), no file copied" \
    test "$(ssh_commands become-apply) $(ssh_puts become-apply)" = "2 0"
check "  the cached build is root's (0700, root-owned directory)" \
    test "$(stat -c '%U %a' "$DIR/${NS[3]}/var-cache/ufw-docker")" = "root 700"
check "a rerun as fleet with sudo changes nothing" module_on_h4 become-rerun
check "  (ok), in one SSH command, copying nothing" \
    eval 'events status h4 "$AD_HOC_TASK" ok && test "$(ssh_commands become-rerun) $(ssh_puts become-rerun)" = "1 0"'

# 5. The ufw_docker command on a host the role converged (issue 12): one saved state, read by the
# command an operator types on the host.
addr() { sed -n "s/^h$1 ansible_host=\([^ ]*\) .*/\1/p" "$INV"; } # HOSTNUMBER -> its IPv4 address
SSH=(ssh -i "$DIR/id_ed25519" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5)
on_ssh() { # NAME USER HOSTNUMBER CMD: CMD over SSH, as an operator logged in; output in DIR/NAME.out,
    # its exit code in DIR/NAME.rc
    local rc=0
    "${SSH[@]}" "$2@$(addr "$3")" "$4" >"$DIR/$1.out" 2>&1 || rc=$?
    echo "$rc" >"$DIR/$1.rc"
}
exited() { # NAME RC: the command of on_ssh NAME exited RC (else its output is shown)
    [[ $(cat "$DIR/$1.rc") == "$2" ]] && return 0
    say "  exit $(cat "$DIR/$1.rc"), not $2: $(cat "$DIR/$1.out")"
    return 1
}
says() { # NAME REGEX...: the output of on_ssh NAME has a line matching each (grep -E)
    local name=$1 re
    shift
    for re in "$@"; do
        grep -qE -- "$re" "$DIR/$name.out" || { say "  no line matching '$re' in: $(cat "$DIR/$name.out")"; return 1; }
    done
}
on_host() { "$HOSTS_SH" enter "$DIR" "${NS[$1 - 1]}" "${@:2}"; } # HOSTNUMBER CMD...: as an SSH session sees it
policy_is_the_roles() { # HOSTNUMBER: the host's policy file holds fleet-vars.yml's allow list and
    # networks, the role's defaults for the rest, and no policy_file
    on_host "$1" cat /etc/ufw-docker/policy.json | python3 -c 'import json, sys, yaml
p = json.load(sys.stdin)
want = yaml.safe_load(open(sys.argv[1]))
ok = (p.get("allow") == want["ufw_docker_allow"] and p.get("trusted_networks") == want["ufw_docker_trusted_networks"]
      and p.get("state") == "present" and p.get("backend") == "ufw" and "policy_file" not in p)
sys.exit(0 if ok else print("policy file:", json.dumps(p)) or 1)' "$REPO/tests/fleet/fleet-vars.yml"
}
POLICY_RE='^policy: +/etc/ufw-docker/policy\.json$'
IN_SYNC_RE='^host: +in sync'

check "h1's policy file holds the role's policy (allow list, trusted networks)" policy_is_the_roles 1
check "  root's, 0640, and h1's own: in the upper layer of h1's /etc, not in the machine's" \
    eval 'test "$(on_host 1 stat -c "%U %a" /etc/ufw-docker/policy.json)" = "root 640" &&
        test -f "$DIR/${NS[0]}/etc-upper/ufw-docker/policy.json" -a ! -e /etc/ufw-docker'
check "h1 has the ufw_docker command, h1's own (root's, 0755), not the machine's" \
    eval 'test "$(stat -c "%U %a" "$DIR/${NS[0]}/usr-local-upper/sbin/ufw_docker")" = "root 755" &&
        cmp -s "$DIR/${NS[0]}/usr-local-upper/sbin/ufw_docker" "$REPO/ansible/binaries/ufw_docker-x86_64" &&
        test ! -e /usr/local/sbin/ufw_docker'
check "h3 (its module run failed) has no policy file and no command" test -z "$(installed 3)"
on_ssh status-h1 root 1 'ufw_docker status'
check "ssh root@h1 ufw_docker status: exit 0" exited status-h1 0
check "  with the role's policy, in sync, its published 8080 open (allowed; the module's defaults block it)" \
    says status-h1 "$POLICY_RE" "$IN_SYNC_RE" '^tcp +0\.0\.0\.0:8080 +172\.17\.0\.2:80 +docker0 +open$'
on_ssh status-json-h1 root 1 'ufw_docker status --json'
rules_have_the_roles() { # the rules of `status --json` (the module's check-mode result on the saved
    # policy) hold fleet-vars.yml's 8443 from 192.0.2.0/24 and its trusted network, and change nothing
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
v4 = r["rules"]["ipv4"]
ok = (r["changed"] is False and any("-s 192.0.2.0/24" in x and "--ctorigdstport 8443" in x for x in v4)
      and any("-s 198.51.100.128/25" in x and x.endswith("-j RETURN") for x in v4))
sys.exit(0 if ok else print("status --json:", json.dumps(r)[:3000]) or 1)' "$DIR/status-json-h1.out"
}
check "  status --json: the rules of the role's 8443 (from 192.0.2.0/24) and trusted network, nothing to change" \
    eval 'exited status-json-h1 0 && rules_have_the_roles'
on_ssh check-h1 root 1 'ufw_docker check'
check "ssh root@h1 ufw_docker check: exit 0 (in sync)" exited check-h1 0
POLICY_SUM=$(on_host 1 sha256sum /etc/ufw-docker/policy.json)
on 1 iptables -F DOCKER-USER # a hand edit
on_ssh check-drifted root 1 'ufw_docker check'
check "after DOCKER-USER is flushed by hand, ufw_docker check exits 3 (drifted)" exited check-drifted 3
on_ssh status-drifted root 1 'ufw_docker status'
check "  and ufw_docker status says drifted, naming the live chain" \
    says status-drifted '^host: +drifted: a run would change .*DOCKER-USER'
on_ssh apply-h1 root 1 'ufw_docker apply'
check "ufw_docker apply on h1: exit 0" exited apply-h1 0
on_ssh check-applied root 1 'ufw_docker check'
check "  ufw_docker check exits 0 again" exited check-applied 0
check "  h1 is converged again (the allowed port live in both families)" converged 1
check "  the policy file is as the role saved it" test "$(on_host 1 sha256sum /etc/ufw-docker/policy.json)" = "$POLICY_SUM"
site() { # NAME HOSTNUMBER [OPTION...]: the role (site.yml) on one host, the fleet's variables
    local name=$1 host=h$2
    shift 2
    run_logged "$name" ansible-playbook -i "$INV" "$REPO/ansible/playbooks/site.yml" -l "$host" \
        -e "@$REPO/tests/fleet/fleet-vars.yml" "$@"
}
changed_nothing() { # HOST: no task of the last run reported a change or a failure on HOST
    python3 -c 'import json, sys
e = [json.loads(l) for l in open(sys.argv[1])]
bad = [(x["task"], x["status"]) for x in e if x["event"] == "result" and x["host"] == sys.argv[2]
       and x["status"] in ("changed", "failed", "unreachable")]
sys.exit(print("changed or failed:", bad) or 1 if bad or not e else 0)' "$FLEET_EVENTS" "$1"
}
check "a rerun of the role on h1 succeeds" site rerun-h1 1
check "  and changes nothing (module, policy file, command)" changed_nothing h1
check "  the module's task ran (ok), the command still the collection's build" \
    eval 'events status h1 "$MODULE_TASK" ok &&
        cmp -s "$DIR/${NS[0]}/usr-local-upper/sbin/ufw_docker" "$REPO/ansible/binaries/ufw_docker-x86_64"'
# h4: the role as real fleets run it, logged in as `fleet`, root through sudo.
check "as fleet with sudo, the role converges h4" site role-h4 4 -e ansible_user=fleet --become
check "  (the module changed h4 to the fleet's policy)" events status h4 "$MODULE_TASK" changed
check "  h4's policy file holds the role's policy" policy_is_the_roles 4
on_ssh status-h4 fleet 4 'sudo -n ufw_docker status'
check "ssh fleet@h4 sudo ufw_docker status: exit 0" exited status-h4 0
check "  with the role's policy, in sync" says status-h4 "$POLICY_RE" "$IN_SYNC_RE"
check "this machine has no /etc/ufw-docker and no /usr/local/sbin/ufw_docker" \
    test ! -e /etc/ufw-docker -a ! -e /usr/local/sbin/ufw_docker

if ((FAIL)); then
    say "the rollout did not behave as it must; see $DIR/rollout.log (rerun with KEEP=1 to keep it)"
    KEEP=1
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
