#!/usr/bin/env bash
# Installs the Debian packages given that are not installed yet, as root, and nothing when all
# are: the one "install what is missing" step of deps.sh, ansible-venv.sh, build-collection.sh,
# bench.sh and tests/bed/install-deps.sh, so that a fresh CI machine gets the same treatment from
# each. Installing never starts a service: a policy-rc.d that says 101 stands while apt runs (the
# tests start their own dockerd and sshd, one per network namespace), unless the machine already
# has one. Prints only to stderr, so callers may capture their own stdout.
#
#   scripts/apt-ensure.sh WHO PACKAGE...     WHO names the caller in the one line it prints
set -euo pipefail
exec 1>&2

who=${1:?usage: scripts/apt-ensure.sh WHO PACKAGE...}
shift
missing=()
for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) != 0 ]]; then
    echo "$who: ${missing[*]} missing; run as root to install them" >&2
    exit 1
fi
echo "$who: installing ${missing[*]}"
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
fi
status=0
{
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
} || status=$?
((created_policy == 0)) || rm -f /usr/sbin/policy-rc.d
exit "$status"
