#!/usr/bin/env bash
# Builds the ufw_docker.ufw_docker collection: the static ufw_docker binary for x86_64 and
# aarch64, copied into ansible/binaries/ (ufw_docker-x86_64 and ufw_docker-aarch64; not in git: the
# action plugin runs them, plugins/modules/ufw_docker.py documents them), then
# `ansible-galaxy collection build` into dist/. Proves the aarch64 build runs under qemu-user
# (installed when missing).
#
#   scripts/build-collection.sh            # binaries, qemu proof, dist/ufw_docker-ufw_docker-*.tar.gz
#   scripts/build-collection.sh --stage    # binaries into the collection only (molecule, fleet)
#
# Prints the path of the tarball (or of the staged binaries/ directory with --stage).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-build}
case $mode in build | --stage) ;; *) echo "usage: scripts/build-collection.sh [--stage]" >&2; exit 2 ;; esac

bindir=ansible/binaries
scripts/deps.sh aarch64-unknown-linux-musl >&2
x86=$(scripts/build.sh x86_64-unknown-linux-musl)
arm=$(scripts/build.sh aarch64-unknown-linux-musl)
mkdir -p "$bindir"
install -m 0755 "$x86" "$bindir/ufw_docker-x86_64.tmp" && mv -f "$bindir/ufw_docker-x86_64.tmp" "$bindir/ufw_docker-x86_64"
install -m 0755 "$arm" "$bindir/ufw_docker-aarch64.tmp" && mv -f "$bindir/ufw_docker-aarch64.tmp" "$bindir/ufw_docker-aarch64"

if [ "$mode" = --stage ]; then
    echo "$bindir"
    exit 0
fi

# The aarch64 build, run the way Ansible runs a binary module (arguments as a JSON file), in
# check mode on scratch copies of the stock rules, under qemu-user: it must print one JSON object
# saying what it would change. qemu-user is installed when missing; the proof is never skipped.
command -v qemu-aarch64 >/dev/null || scripts/apt-ensure.sh build-collection qemu-user
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp tests/data/after.rules tests/data/after6.rules "$scratch/"
printf '{"apply":"none","after_rules":"%s/after.rules","after6_rules":"%s/after6.rules","_ansible_check_mode":true}\n' \
    "$scratch" "$scratch" >"$scratch/args.json"
if ! qemu-aarch64 "$bindir/ufw_docker-aarch64" "$scratch/args.json" >"$scratch/out.json" ||
    ! /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["changed"] is True and "failed" not in d, d' \
        "$scratch/out.json"; then
    echo "build-collection: the aarch64 build did not answer with JSON under qemu-aarch64:" >&2
    cat "$scratch/out.json" >&2
    exit 1
fi
file "$bindir/ufw_docker-aarch64" | grep -q 'ARM aarch64.*statically linked' ||
    { echo "build-collection: the aarch64 build is not a static aarch64 executable: $(file "$bindir/ufw_docker-aarch64")" >&2; exit 1; }
echo "build-collection: aarch64 build (static) answers under qemu-aarch64: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["msg"])' "$scratch/out.json")" >&2

# The collection is built from a staged copy of ansible/ that adds what has one home elsewhere:
# the LICENSE of the repository, the licenses of the crates compiled into the builds, and the
# address of the repository the tarball is built from (Galaxy requires one; galaxy.yml in git
# has none, because no address is true of every clone).
stage="$scratch/ufw_docker"
cp -a ansible "$stage"
install -m 0644 LICENSE "$stage/LICENSE"
scripts/licenses.sh --list "$stage/THIRD-PARTY-LICENSES.md" >&2
repository=$(scripts/repository-url.sh)
printf '# Added by scripts/build-collection.sh: the repository this tarball was built from.\nrepository: %s\n' \
    "$repository" >>"$stage/galaxy.yml"
echo "build-collection: repository: $repository" >&2

venv=$(scripts/ansible-venv.sh -p)
mkdir -p dist
"$venv/bin/ansible-galaxy" collection build "$stage" --output-path dist --force >&2
version=$(awk '$1 == "version:" {print $2}' ansible/galaxy.yml)
echo "dist/ufw_docker-ufw_docker-$version.tar.gz"
