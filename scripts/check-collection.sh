#!/usr/bin/env bash
# Checks the built collection tarball as its users and Galaxy will meet it, in `make test`:
#   1. its file list: LICENSE, README, the role README, the module's documentation, the changelog,
#      the third-party licenses and both static builds are there; nothing else is (no build junk:
#      an allow list of paths, not a deny list);
#   2. installed from the tarball: `ansible-doc` shows the module's options, attributes and
#      returns, and `ansible-doc -l` lists it with nothing on stderr (no warning);
#   3. ansible-lint, with the configuration the README gives users, fails a user's playbook with
#      a misspelt option (alow) and a wrong type (backup: maybe), and passes the corrected one;
#   4. Galaxy's own import check (galaxy-importer, from PyPI, in the venv) ends without an
#      ERROR;
#   5. `ansible-test sanity` on the installed collection (scripts/sanity.sh);
#   6. `ansible-test units` on the installed collection (scripts/units.sh): the fleet audit's
#      report renderer.
# Why it exists: each of these failed once on a tarball that every other test passed.
#
#   scripts/check-collection.sh dist/ufw_docker-ufw_docker-0.1.0.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."

tarball=${1:?usage: scripts/check-collection.sh TARBALL}
[ -f "$tarball" ] || { echo "check-collection: no tarball $tarball" >&2; exit 1; }
tarball=$(realpath "$tarball")
venv=$(scripts/ansible-venv.sh -p)
export PATH=$venv/bin:$PATH
say() { echo "check-collection: $*"; }
fail() { echo "check-collection: $*" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# 1. The file list.
tar tzf "$tarball" | sed 's#/$##' | sort >"$scratch/files"
for f in MANIFEST.json FILES.json LICENSE README.md CHANGELOG.md THIRD-PARTY-LICENSES.md \
    changelogs/changelog.yaml changelogs/config.yaml meta/runtime.yml \
    plugins/modules/ufw_docker.py plugins/action/ufw_docker.py plugins/module_utils/argument_spec.py \
    roles/ufw_docker/README.md roles/ufw_docker/meta/argument_specs.yml roles/ufw_docker/meta/main.yml \
    playbooks/site.yml playbooks/rollout.yml playbooks/audit.yml binaries/ufw_docker-x86_64 binaries/ufw_docker-aarch64 \
    plugins/modules/audit_report.py plugins/action/audit_report.py plugins/module_utils/audit_report_spec.py \
    plugins/plugin_utils/audit_report.py roles/ufw_docker/tasks/audit.yml \
    plugins/filter/exposure_table.py plugins/filter/exposure_table.yml \
    tests/unit/plugins/plugin_utils/test_audit_report.py tests/unit/plugins/action/test_audit_report.py \
    tests/unit/plugins/filter/test_exposure_table.py; do
    grep -qxF "$f" "$scratch/files" || fail "the tarball lacks $f"
done
# Every path must be one the collection is made of: its top-level files, and the files of its
# directories by kind. Anything else (caches, editor files, archives, build output) is junk.
allowed='^(MANIFEST\.json|FILES\.json|LICENSE|README\.md|CHANGELOG\.md|THIRD-PARTY-LICENSES\.md'
allowed+='|meta|meta/runtime\.yml|binaries|binaries/ufw_docker-(x86_64|aarch64)'
allowed+='|changelogs|changelogs/(changelog|config)\.yaml|changelogs/fragments|changelogs/fragments/[a-z0-9_.-]+\.ya?ml'
allowed+='|plugins|plugins/(modules|action|module_utils|plugin_utils|filter)|plugins/(modules|action|module_utils|plugin_utils|filter)/[a-z_]+\.py'
allowed+='|plugins/filter/[a-z_]+\.yml'
allowed+='|playbooks|playbooks/[a-z_]+\.yml'
allowed+='|tests|tests/config\.yml|tests/sanity|tests/sanity/ignore-2\.[0-9]+\.txt'
allowed+='|tests/unit|tests/unit/plugins|tests/unit/plugins/(plugin_utils|action|filter)|tests/unit/plugins/(plugin_utils|action|filter)/test_[a-z_]+\.py'
allowed+='|roles|roles/ufw_docker|roles/ufw_docker/README\.md'
allowed+='|roles/ufw_docker/(defaults|meta|tasks|templates|vars)|roles/ufw_docker/(defaults|meta|tasks|vars)/[A-Za-z_-]+\.yml'
allowed+='|roles/ufw_docker/templates/[a-z_.-]+\.j2)$'
if junk=$(grep -Ev "$allowed" "$scratch/files"); then
    fail "the tarball holds files that are not part of the collection: $(echo "$junk" | paste -sd' ')"
fi
mkdir "$scratch/x"
tar xzf "$tarball" -C "$scratch/x" binaries
file "$scratch/x/binaries/ufw_docker-x86_64" | grep -Eq 'ELF 64-bit.*x86-64.*(statically|static-pie) linked' ||
    fail "binaries/ufw_docker-x86_64 is not a static x86-64 executable: $(file -b "$scratch/x/binaries/ufw_docker-x86_64")"
file "$scratch/x/binaries/ufw_docker-aarch64" | grep -Eq 'ELF 64-bit.*ARM aarch64.*(statically|static-pie) linked' ||
    fail "binaries/ufw_docker-aarch64 is not a static aarch64 executable: $(file -b "$scratch/x/binaries/ufw_docker-aarch64")"
say "$(wc -l <"$scratch/files") entries, every one expected; both builds static; tar tzf:"
sed 's/^/  /' "$scratch/files"

# 2. Installed, as a user installs it. The venv links the source tree as the same collection:
# ANSIBLE_COLLECTIONS_PATH puts the installed copy first, and the checks require its path.
ansible-galaxy collection install --offline --force -p "$scratch/c" "$tarball" >/dev/null 2>&1
export ANSIBLE_COLLECTIONS_PATH=$scratch/c
ansible-doc --json ufw_docker.ufw_docker.ufw_docker >"$scratch/doc.json"
"$venv/bin/python" - "$scratch/doc.json" "$scratch/c" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))["ufw_docker.ufw_docker.ufw_docker"]
src = doc["doc"]["filename"]
assert src == sys.argv[2] + "/ansible_collections/ufw_docker/ufw_docker/plugins/modules/ufw_docker.py", src
assert doc["doc"]["has_action"] is True, "ansible-doc does not see the action plugin"
attrs = doc["doc"]["attributes"]
assert attrs["check_mode"]["support"] == "full" and attrs["diff_mode"]["support"] == "full", attrs
assert all(a.get("description") for a in attrs.values()), attrs
for option in ("state", "allow", "trusted_networks", "backend", "apply"):
    assert option in doc["doc"]["options"], option
for key in ("changed", "diff", "commands", "published", "check_mode"):
    assert key in doc["return"], key
assert doc["examples"].strip(), "no EXAMPLES"
EOF
ansible-doc --json ufw_docker.ufw_docker.audit_report >"$scratch/doc.json"
"$venv/bin/python" - "$scratch/doc.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))["ufw_docker.ufw_docker.audit_report"]
assert doc["doc"]["has_action"] is True, "ansible-doc does not see audit_report's action plugin"
assert set(doc["doc"]["options"]) == {"dest", "hosts", "result_var", "results"}, sorted(doc["doc"]["options"])
assert set(doc["return"]) == {"files", "totals"}, sorted(doc["return"])
assert doc["examples"].strip(), "no EXAMPLES"
EOF
say "ansible-doc shows the installed modules' options, attributes and returns (ufw_docker, audit_report)"
ansible-doc -l ufw_docker.ufw_docker >"$scratch/list" 2>"$scratch/list.err"
[ ! -s "$scratch/list.err" ] || fail "ansible-doc -l printed on stderr: $(cat "$scratch/list.err")"
grep -q '^ufw_docker\.ufw_docker\.ufw_docker ' "$scratch/list" ||
    fail "ansible-doc -l does not list the module: $(cat "$scratch/list")"
grep -q '^ufw_docker\.ufw_docker\.audit_report ' "$scratch/list" ||
    fail "ansible-doc -l does not list audit_report: $(cat "$scratch/list")"
say "ansible-doc -l ufw_docker.ufw_docker, with an empty stderr:"
sed 's/^/  /' "$scratch/list"

# 3. ansible-lint on a user's playbooks, with the configuration the README gives users.
mkdir "$scratch/lint"
cp tests/collection/misspelt.yml tests/collection/correct.yml "$scratch/lint/"
cp tests/collection/ansible-lint.yml "$scratch/lint/.ansible-lint"
if (cd "$scratch/lint" && ansible-lint --nocolor misspelt.yml) >"$scratch/lint.out" 2>&1; then
    cat "$scratch/lint.out" >&2
    fail "ansible-lint passed a playbook with a misspelt option and a wrong type"
fi
grep -q 'args\[module\].*Unsupported parameters for .* module: alow' "$scratch/lint.out" &&
    grep -q "args\[module\].*argument 'backup' is of type str and we were unable to convert to bool" "$scratch/lint.out" || {
    cat "$scratch/lint.out" >&2
    fail "ansible-lint failed the playbook, but not for its two mistakes"
}
say "ansible-lint fails the user's playbook with alow: and backup: maybe:"
grep 'args\[module\]' "$scratch/lint.out" | sed 's/^/  /'
(cd "$scratch/lint" && ansible-lint --nocolor correct.yml) >"$scratch/lint.out" 2>&1 || {
    cat "$scratch/lint.out" >&2
    fail "ansible-lint fails the corrected playbook"
}
say "ansible-lint passes the corrected playbook"

# 4. Galaxy's own import check, as Galaxy runs it on an upload (ansible-doc and ansible-lint from
# the venv on PATH). Its result file says what Galaxy's content list will show.
(cd "$scratch" && "$venv/bin/python" -m galaxy_importer.main "$tarball") >"$scratch/importer.log" 2>&1 || {
    cat "$scratch/importer.log" >&2
    fail "galaxy-importer failed"
}
if grep -q 'ERROR' "$scratch/importer.log"; then
    cat "$scratch/importer.log" >&2
    fail "galaxy-importer reported an ERROR"
fi
"$venv/bin/python" - "$scratch/importer_result.json" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
blob = result["docs_blob"]
assert blob["collection_readme"]["name"] == "README.md", blob["collection_readme"]
by_type = {(c["content_type"], c["content_name"]): c for c in blob["contents"]}
module = by_type[("module", "ufw_docker")]["doc_strings"]
options = {o["name"] for o in module["doc"]["options"]}
for option in ("state", "allow", "trusted_networks", "backend", "apply"):
    assert option in options, (option, sorted(options))
assert ("role", "ufw_docker") in by_type and ("action", "ufw_docker") in by_type, sorted(by_type)
assert ("module", "audit_report") in by_type and ("action", "audit_report") in by_type, sorted(by_type)
assert result["requires_ansible"], result["requires_ansible"]
EOF
say "galaxy-importer accepts the tarball; Galaxy's content list shows the module with its docs:"
sed -n '/^Importing with/,/^Importer processing/p' "$scratch/importer.log" | sed 's/^/  /'

# 5. ansible-test sanity, on the collection installed from the tarball.
scripts/sanity.sh "$tarball"

# 6. ansible-test units, on the collection installed from the tarball.
scripts/units.sh "$tarball"
