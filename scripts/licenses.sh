#!/usr/bin/env bash
# Checks the licenses, bans and sources of every crate that goes into the release binary, with
# cargo-deny (config: deny.toml), and writes the third-party license notices that ship with it
# when asked. Why it exists: the static binary is copied to every managed host with its
# dependencies compiled in, so a dependency under a license we have not accepted, or from a
# registry other than crates.io, must fail here, not be noticed later, and a release must carry
# its dependencies' license texts. Also checks that the collection declares the crate's license
# (the build puts the repository's LICENSE into the collection: scripts/build-collection.sh).
#
#   scripts/licenses.sh              # cargo-deny installed if missing, then the check
#   scripts/licenses.sh --list OUT   # the check, then OUT (Markdown): every linked crate with
#                                    # version, license and source, and its license files' text;
#                                    # OUT is relative to the repository root
#
# cargo-deny is installed with `cargo install --locked` at the version pinned below, into cargo's
# bin directory, when that version is not there yet (a few minutes on 2 cores; quiet when it
# is). Once the crates are fetched (`cargo fetch`, done here) the check runs offline. Everything
# this script prints goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 1>&2

deny_version=0.20.2

out=
case $#:${1:-} in
0:) ;;
2:--list) out=$2 ;;
*)
    echo "usage: scripts/licenses.sh [--list OUT]"
    exit 2
    ;;
esac

crate_license=$(cargo metadata --format-version 1 --no-deps --offline |
    /usr/bin/python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"] == "ufw_docker"][0]["license"])')
# galaxy.yml's `license:` list, one SPDX identifier an item (no YAML parser needed for that).
galaxy_license=$(awk '/^license:/ {on = 1; next} on && /^ *- / {print $2; next} {on = 0}' ansible/galaxy.yml |
    paste -sd' ')
if [ "$crate_license" != "$galaxy_license" ]; then
    echo "licenses: Cargo.toml says license \"$crate_license\", ansible/galaxy.yml's license list says \"$galaxy_license\"; they must agree"
    exit 1
fi

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    echo "licenses: installing cargo-deny $deny_version (cargo install --locked; a few minutes)"
    start=$SECONDS
    cargo install --quiet --locked cargo-deny --version "$deny_version"
    echo "licenses: cargo-deny $deny_version installed in $((SECONDS - start)) s"
fi

cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources

if [ -n "$out" ]; then
    scripts/third-party-licenses.py "$out"
fi
