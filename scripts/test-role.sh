#!/usr/bin/env bash
# The Ansible side of `make test`: the controller venv, ansible-lint (production profile) and
# yamllint, the role's variables in their three homes, the module's options in their five homes
# (scripts/check-options.py), the action plugin's shell commands, the release
# (scripts/release.sh: the collection tarball with its x86_64 and aarch64 static builds, checked
# as users and Galaxy meet it, by scripts/check-collection.sh, with ansible-test sanity and
# units), then the molecule scenario, the fleet rollout test, the systemd unit test of the
# iptables backend and the fleet exposure audit (real Docker, real packets, a real browser), all
# over real SSH to network-namespace hosts. Run as root from anywhere; it never skips a step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Ansible controller venv (ansible-core, molecule, ansible-lint)"
venv=$(scripts/ansible-venv.sh -p)
export PATH=$venv/bin:$PATH

step "ansible-lint --profile production, yamllint"
ansible-lint --profile production ansible molecule
yamllint --strict ansible molecule tests/fleet tests/collection .ansible-lint .yamllint

step "changelog: fragments lint, CHANGELOG.md regenerated and compared, one version"
scripts/changelog-check.sh

step "role variables: defaults, argument_specs and README agree"
"$venv/bin/python" scripts/check-role-vars.py

step "module options: src/params.rs (src/options.json), argument_spec.py, DOCUMENTATION, README and the role agree"
"$venv/bin/python" scripts/check-options.py

step "the action plugin's shell commands (cache miss, copy, hit, damage, dry run, absent)"
"$venv/bin/python" -B tests/fleet/action-plugin-test.py

step "the release (make release): the collection with both static builds (aarch64 proven under qemu-user), its file list, ansible-doc, ansible-lint on a user's playbook, galaxy-importer, ansible-test sanity and units; the binaries, SHA256SUMS"
scripts/release.sh --unpublished

step "molecule test: create, converge, idempotence, verify (real packets), destroy"
molecule test

step "fleet rollout: five SSH hosts, one broken on purpose"
tests/fleet/fleet-test.sh

step "backend iptables: ufw-docker.service under a real systemd, through a Docker restart and a reboot"
tests/fleet/unit-test.sh

step "the fleet exposure audit: report.json against real packets, nothing changed on any host, report.html in headless Chromium"
tests/fleet/audit-test.sh
