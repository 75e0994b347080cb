#!/usr/bin/env bash
# Creates the controller side of the Ansible role as root on Debian or Ubuntu: a virtualenv at
# .venv (from /usr/bin/python3, never a pyenv shim) with the pinned tools of
# ansible/requirements.txt and the collection in ansible/ linked into it, plus the OpenSSH
# server and client that the molecule and fleet test hosts run, and sudo (their user `fleet`
# becomes root with it). Idempotent and quiet when everything is already there; prints the
# venv's path with -p.
#
#   scripts/ansible-venv.sh        # make sure it is all there
#   . .venv/bin/activate           # then: ansible-lint, molecule, ansible-playbook, ...
set -euo pipefail
cd "$(dirname "$0")/.."
# Callers capture stdout for the path (-p): everything else this script and its tools print goes
# to stderr, so an install on a fresh machine cannot leak into that path.
exec 3>&1 1>&2

if [ "$(id -u)" != 0 ]; then
    echo "scripts/ansible-venv.sh: run as root (apt-get)" >&2
    exit 1
fi

# openssh-server is installed without starting a system sshd (apt-ensure.sh): the test hosts
# start their own, one per network namespace.
scripts/apt-ensure.sh ansible-venv python3-venv openssh-server openssh-client sudo

venv=.venv
req=ansible/requirements.txt
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "ansible-venv: installing $req into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
fi

# The collection in ansible/ is linked into the venv's site-packages, like an editable install:
# Ansible scans sys.path for ansible_collections, so ufw_docker.ufw_docker resolves from the
# source tree in every ansible, ansible-doc, molecule and ansible-lint run of this venv.
link="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections/ufw_docker/ufw_docker"
if [ "$(readlink "$link" 2>/dev/null)" != "$PWD/ansible" ]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn "$PWD/ansible" "$link"
fi

if [ "${1:-}" = -p ]; then
    echo "$PWD/$venv" >&3
fi
