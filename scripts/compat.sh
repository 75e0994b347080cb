#!/usr/bin/env bash
# The compatibility matrix of the collection: for each ansible-core minor it claims
# (meta/runtime.yml), the latest patch on PyPI, in a venv of its own, on a Python that minor
# supports as a controller, checks the built tarball the way a user meets it:
#   ansible-doc  installed with `ansible-galaxy collection install --offline`, `ansible-doc
#                ufw_docker.ufw_docker.ufw_docker` renders the module (from the installed copy) and
#                `ansible-doc -l ufw_docker.ufw_docker` lists it with nothing on stderr;
#   sanity       scripts/sanity.sh with that ansible-core (every sanity test, offline);
#   check        the role (playbook ufw_docker.ufw_docker.site) over SSH to a network-namespace
#                host of its own (tests/fleet/hosts.sh), --check --diff: succeeds, leaves the
#                host's after.rules files and DOCKER-USER as they were;
#   apply        the same for real: succeeds, changes the host, writes the managed blocks;
#   rerun        the same again: changed=0.
# No Docker runs on the hosts: the module and the role apply without it (nothing is published).
# Why it exists: the collection says it works from ansible-core 2.15 on, while its tests run on
# the one pinned in ansible/requirements.txt.
#
# Prints the Markdown table and writes it to dist/compat.md; each cell's log is under
# dist/compat-logs/2.N/. Exit code 0 only when every cell passes. The hosts are always torn down,
# then scripts/leftovers.sh proves that nothing is left.
#
#   scripts/compat.sh [TARBALL]     # default: scripts/build-collection.sh builds it
# env:
#   COMPAT_MINORS   the minors to check (default "2.15 2.16 2.17 2.18 2.19 2.20")
set -euo pipefail

[[ $(id -u) == 0 ]] || { echo "compat.sh: run as root (network namespaces, sshd)" >&2; exit 1; }
if (($# > 1)); then
    echo "usage: scripts/compat.sh [TARBALL]" >&2
    exit 2
fi
tarball=
if (($# == 1)); then
    tarball=$(realpath "$1")
fi
cd "$(dirname "$0")/.."
repo=$PWD
if [[ -z $tarball ]]; then
    tarball=$repo/$(scripts/build-collection.sh)
fi
[[ -f $tarball ]] || { echo "compat.sh: no tarball $tarball" >&2; exit 1; }
scripts/deps.sh >&2
scripts/apt-ensure.sh compat openssh-server openssh-client python3-venv

minors=${COMPAT_MINORS:-2.15 2.16 2.17 2.18 2.19 2.20}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
# A Python each minor supports as a controller: bookworm's 3.11 where it can, else pyenv's 3.12.
python_for() {
    case $1 in
    2.15 | 2.16 | 2.17 | 2.18 | 2.19) echo /usr/bin/python3 ;;
    *) echo "$pyenv_root/versions/3.12.1/bin/python3" ;;
    esac
}

logs=$repo/dist/compat-logs
rm -rf "$logs"
mkdir -p "$logs"
state=$(mktemp -d /tmp/ufwd-compat.XXXXXX)
# The hosts' user `fleet` logs in with the key under $fleet, which sshd reads as that user.
chmod 0755 "$state"
fleet=$state/fleet
teardown() {
    local rc=$?
    [[ ! -f $fleet/hosts ]] || tests/fleet/hosts.sh destroy "$fleet" >&2 || rc=1
    rm -rf "$state"
    return $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

# One SSH host per minor, each with its own /etc/ufw, on a documentation /24 that no other fleet
# on this machine holds now (fleet-test.sh and molecule use one each).
read -ra minor_list <<<"$minors"
net=
for candidate in 198.51.100 203.0.113; do
    if [[ -z $(ip -4 -o addr show to "$candidate.0/24") ]]; then net=$candidate; break; fi
done
[[ -n $net ]] || { echo "compat.sh: 198.51.100.0/24 and 203.0.113.0/24 are both in use (other fleets running?)" >&2; exit 1; }
FLEET_NET=$net tests/fleet/hosts.sh create "${#minor_list[@]}" "$fleet" >&2
mapfile -t namespaces <"$fleet/hosts"

# A cell says PASS, or FAIL with the reason; the logs keep the details.
rows=()
fingerprint() { # NS -> the host's two rule files and its DOCKER-USER chains, hashed
    ip netns exec "$1" sh -c 'cat /etc/ufw/after.rules /etc/ufw/after6.rules; iptables-save -t filter | grep "^-A DOCKER-USER"; ip6tables-save -t filter | grep "^-A DOCKER-USER"; true' |
        sha256sum | cut -d' ' -f1
}
recap() { # LOG HOST -> "changed=N failed=N unreachable=N", from the PLAY RECAP
    awk -v host="$2" '$1 == host && $2 == ":" {
        for (i = 3; i <= NF; i++) { split($i, kv, "="); n[kv[1]] = kv[2] }
        line = "changed=" n["changed"] " failed=" n["failed"] " unreachable=" n["unreachable"]
    } END { print line }' "$1"
}
blocks() { # NS: one managed block in each of the host's rule files
    local f
    for f in after.rules after6.rules; do
        [[ $(ip netns exec "$1" grep -c '^# BEGIN UFW-DOCKER MANAGED BLOCK sha256=' "/etc/ufw/$f") == 1 ]] || return 1
    done
}
run() { # NAME CMD...: CMD with this minor's venv and installed copy, in a directory without
    # ansible.cfg; its output in $log/NAME.log and NAME.err
    (cd "$state" && env PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "${@:2}") >"$log/$1.log" 2>"$log/$1.err"
}

for i in "${!minor_list[@]}"; do
    minor=${minor_list[i]}
    host=h$((i + 1)) ns=${namespaces[i]}
    log=$logs/$minor
    mkdir -p "$log"
    python=$(python_for "$minor")
    echo "compat: ansible-core $minor on $python, host $host ($ns)" >&2
    doc=- sanity=- check=- apply=- rerun=-

    if [[ ! -x $python ]]; then
        rows+=("| $minor | none | FAIL: no $python on this machine, the Python this minor is checked on | - | - | - | - |")
        continue
    fi
    if ! venv=$(scripts/core-venv.sh ".venv-compat/$minor" "$minor" "$python" 2>"$log/venv.log"); then
        pyver=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo "$python")
        rows+=("| $minor | $pyver | FAIL: no venv with ansible-core $minor on Python $pyver: $(tail -1 "$log/venv.log") | - | - | - | - |")
        continue
    fi
    core=$(sed -n 's/^requirement=ansible-core==//p' "$venv/.core-venv")
    pyver=$(sed -n 's/^python=.* //p' "$venv/.core-venv")

    # The tarball installed as a user installs it, and only that copy on the collections path.
    collections=$state/collections-$minor
    if ! run install ansible-galaxy collection install --offline --force -p "$collections" "$tarball"; then
        doc="FAIL: ansible-galaxy collection install: $(tail -1 "$log/install.err")"
    elif ! run doc ansible-doc ufw_docker.ufw_docker.ufw_docker ||
        ! grep -q "$collections/ansible_collections/ufw_docker/ufw_docker/plugins/modules/ufw_docker.py" "$log/doc.log" ||
        ! grep -q '^OPTIONS' "$log/doc.log"; then
        doc="FAIL: ansible-doc does not render the installed module: $(head -c 300 "$log/doc.err")"
    elif ! run list ansible-doc -l ufw_docker.ufw_docker; then
        doc="FAIL: ansible-doc -l: $(head -c 300 "$log/list.err")"
    elif [[ -s $log/list.err ]]; then
        doc="FAIL: ansible-doc -l warns: $(head -c 300 "$log/list.err" | tr '\n' ' ')"
    elif ! grep -q '^ufw_docker\.ufw_docker\.ufw_docker ' "$log/list.log"; then
        doc="FAIL: ansible-doc -l does not list the module"
    else
        doc=PASS
    fi

    if summary=$(ANSIBLE_CORE=$core PYTHON=$python SANITY_VENV=.venv-compat/$minor \
        scripts/sanity.sh "$tarball" 2>"$log/sanity.log"); then
        sanity="PASS (${summary#*: pass, })"
    else
        sanity="FAIL: ${summary#*: FAIL, }${summary:+; }see dist/compat-logs/$minor/sanity.log"
    fi

    playbook=(ansible-playbook -i "$fleet/inventory.ini" --limit "$host" ufw_docker.ufw_docker.site
        -e "@$repo/tests/fleet/fleet-vars.yml")
    before=$(fingerprint "$ns")
    rc=0
    run check "${playbook[@]}" --check --diff || rc=$?
    if ((rc)); then
        check="FAIL: rc $rc ($(recap "$log/check.log" "$host"))"
    elif [[ $(fingerprint "$ns") != "$before" ]]; then
        check="FAIL: check mode changed the host"
    else
        check="PASS ($(recap "$log/check.log" "$host" | cut -d' ' -f1))"
    fi
    rc=0
    run apply "${playbook[@]}" || rc=$?
    if ((rc)); then
        apply="FAIL: rc $rc ($(recap "$log/apply.log" "$host"))"
    elif [[ $(recap "$log/apply.log" "$host") == changed=0* ]] || ! blocks "$ns"; then
        apply="FAIL: nothing changed, or no managed block in after.rules/after6.rules"
    else
        apply="PASS ($(recap "$log/apply.log" "$host" | cut -d' ' -f1))"
    fi
    rc=0
    run rerun "${playbook[@]}" || rc=$?
    if ((rc)); then
        rerun="FAIL: rc $rc ($(recap "$log/rerun.log" "$host"))"
    elif [[ $(recap "$log/rerun.log" "$host") != "changed=0 failed=0 unreachable=0" ]]; then
        rerun="FAIL: $(recap "$log/rerun.log" "$host")"
    else
        rerun=PASS
    fi
    rows+=("| $core | $pyver | $doc | $sanity | $check | $apply | $rerun |")
    echo "compat: ${rows[-1]}" >&2
done

# Only lines below: the table, for the README.
table=$(
    echo "| ansible-core | Python | ansible-doc | sanity | check | apply | rerun changed=0 |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
)
echo "$table" >"$repo/dist/compat.md"
echo "$table"

tests/fleet/hosts.sh destroy "$fleet" >&2
failed=0
[[ $table != *"| FAIL"* ]] || failed=1
scripts/leftovers.sh >&2 || { echo "compat.sh: something is left behind (see above)" >&2; failed=1; }
((failed == 0))
