#!/usr/bin/env bash
# The Ansible side of `make test`: the controller venv, ansible-lint (production profile) and
# yamllint, the role's variables in their three homes, the module's documentation through
# ansible-doc, the collection artifact (x86_64 and aarch64 static builds, the aarch64 one run
# under qemu-user) installed from its tarball, then the molecule scenario, the fleet rollout
# test and the systemd unit test of the iptables backend, all over real SSH to network-namespace
# hosts. Run as root from anywhere; it never
# skips a step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Ansible controller venv (ansible-core, molecule, ansible-lint)"
venv=$(scripts/ansible-venv.sh -p)
export PATH=$venv/bin:$PATH

step "ansible-lint --profile production, yamllint"
ansible-lint --profile production ansible molecule
yamllint --strict ansible molecule tests/fleet .ansible-lint .yamllint

step "role variables: defaults, argument_specs and README agree"
"$venv/bin/python" scripts/check-role-vars.py

step "the action plugin's shell commands (cache miss, copy, hit, damage, dry run, absent)"
"$venv/bin/python" -B tests/fleet/action-plugin-test.py

step "the collection: x86_64 and aarch64 static builds, qemu-user proof, galaxy tarball"
tarball=$(scripts/build-collection.sh)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
ansible-galaxy collection install --offline --force -p "$scratch" "$tarball" >/dev/null 2>&1
installed=$scratch/ansible_collections/ufw_docker/ufw_docker
for f in plugins/modules/ufw_docker plugins/modules/ufw_docker_aarch64 plugins/action/ufw_docker.py \
    roles/ufw_docker/meta/argument_specs.yml playbooks/rollout.yml; do
    [ -e "$installed/$f" ] || { echo "test-role: the installed collection lacks $f" >&2; exit 1; }
done
# ansible-doc reads the sidecar of the installed copy (not the source tree the venv links).
(cd "$scratch" && ANSIBLE_COLLECTIONS_PATH="$scratch" ansible-doc --json ufw_docker.ufw_docker.ufw_docker) |
    "$venv/bin/python" -c '
import json, sys
doc = json.load(sys.stdin)["ufw_docker.ufw_docker.ufw_docker"]
src = doc["doc"]["filename"]
assert "/tmp/" in src and "ansible_collections/ufw_docker/ufw_docker/plugins/modules/" in src, src
attrs = doc["doc"]["attributes"]
assert attrs["check_mode"]["support"] == "full" and attrs["diff_mode"]["support"] == "full", attrs
for option in ("state", "allow", "trusted_networks", "backend", "apply"):
    assert option in doc["doc"]["options"], option
for key in ("changed", "diff", "commands", "published", "check_mode"):
    assert key in doc["return"], key
assert doc["examples"].strip(), "no EXAMPLES"
'
echo "test-role: $tarball installs; ansible-doc shows the module's options, attributes and returns"

step "molecule test: create, converge, idempotence, verify (real packets), destroy"
molecule test

step "fleet rollout: five SSH hosts, one broken on purpose"
tests/fleet/fleet-test.sh

step "backend iptables: ufw-docker.service under a real systemd, through a Docker restart and a reboot"
tests/fleet/unit-test.sh
