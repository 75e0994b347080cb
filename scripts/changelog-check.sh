#!/usr/bin/env bash
# Checks the collection's changelog, kept with antsibull-changelog in ansible/changelogs/. Why it
# exists: ansible/CHANGELOG.md is generated from changelogs/changelog.yaml, and a release carries
# one version in three places (ansible/galaxy.yml, Cargo.toml, the changelog's latest release);
# a fragment that does not parse, a CHANGELOG.md edited by hand or not regenerated, or a version
# bumped in one place only must fail here, before a release is built from them.
#
#   scripts/changelog-check.sh
#
# Runs antsibull-changelog from the repo's venv (scripts/ansible-venv.sh; the pin is in
# ansible/requirements.txt), or from the venv given as CHANGELOG_VENV. Read-only: the
# regenerated changelog goes to a temporary file. Prints only to stderr.
#
# Releasing a version X.Y.Z: set it in galaxy.yml and Cargo.toml, then in ansible/, with the venv
# on PATH (release asks ansible-doc for the modules and roles whose version_added is X.Y.Z, for
# its New Modules and New Roles sections)
#   antsibull-changelog release --version X.Y.Z --date YYYY-MM-DD
# and commit changelogs/ and CHANGELOG.md (not changelogs/.plugin-cache.yaml, a cache).
set -euo pipefail
cd "$(dirname "$0")/.."
exec 1>&2

venv=${CHANGELOG_VENV:-$(scripts/ansible-venv.sh -p)}
tool=$venv/bin/antsibull-changelog
if [ ! -x "$tool" ]; then
    echo "changelog-check: $tool is missing; ansible/requirements.txt must pin antsibull-changelog"
    exit 1
fi

echo "changelog-check: antsibull-changelog lint, lint-changelog-yaml"
(cd ansible && "$tool" lint && "$tool" lint-changelog-yaml changelogs/changelog.yaml)

echo "changelog-check: ansible/CHANGELOG.md is what changelogs/changelog.yaml generates"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd ansible && "$tool" generate --output "$scratch/CHANGELOG.md" --output-format md)
if ! diff -u ansible/CHANGELOG.md "$scratch/CHANGELOG.md"; then
    echo "changelog-check: ansible/CHANGELOG.md is stale or edited by hand; regenerate it: (cd ansible && antsibull-changelog generate)"
    exit 1
fi

echo "changelog-check: one version in galaxy.yml, Cargo.toml and the changelog's latest release"
cargo_version=$(cargo metadata --format-version 1 --no-deps --offline |
    "$venv/bin/python" -c 'import json, sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"] == "ufw_docker"][0]["version"])')
versions=$("$venv/bin/python" -c '
import yaml
from packaging.version import Version
galaxy = yaml.safe_load(open("ansible/galaxy.yml"))
releases = (yaml.safe_load(open("ansible/changelogs/changelog.yaml")) or {}).get("releases") or {}
print(galaxy["version"], max(releases, key=Version) if releases else "none")
')
read -r galaxy_version changelog_version <<<"$versions"
if [ "$galaxy_version" != "$cargo_version" ] || [ "$galaxy_version" != "$changelog_version" ]; then
    echo "changelog-check: versions disagree: ansible/galaxy.yml $galaxy_version, Cargo.toml $cargo_version," \
        "latest release of ansible/changelogs/changelog.yaml $changelog_version"
    exit 1
fi
echo "changelog-check: ok, version $galaxy_version"
