#!/usr/bin/env bash
# Runs the collection's unit tests (ansible/tests/unit: the fleet audit's report renderer, the
# exposure_table filter) with `ansible-test units`, on the built collection, offline, and fails
# unless every test ran and passed.
#
# Why it exists: the controller-side code of the collection (plugins/plugin_utils/,
# plugins/filter/) is tested with Ansible's own runner, as users and Galaxy's CI would run it,
# on what the tarball holds.
# `ansible-test units --local --requirements` installs pytest and its plugins from PyPI into the
# venv below (the one way it needs no download beyond PyPI: no --venv or --docker bootstrap) and
# runs the tests on the controller's Python. HOME points into that venv while ansible-test runs,
# so that its caches stay there, not in root's home. The tarball is installed into a scratch
# ansible_collections/NAMESPACE/NAME (the layout ansible-test requires), removed on exit.
#
#   scripts/units.sh dist/ufw_docker-ufw_docker-0.1.0.tar.gz
# env:
#   ANSIBLE_CORE  ansible-core version, 2.N.P or 2.N; default: the pin in ansible/requirements.txt
#   PYTHON        the interpreter of the venv and of the tests; default /usr/bin/python3
#
# Prints one summary line on stdout; everything else goes to stderr.
set -euo pipefail
exec 3>&1 1>&2
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

if (($# != 1)) || [[ ! -f $1 ]]; then
    echo "usage: scripts/units.sh TARBALL (see the header for the env variables)" >&2
    exit 2
fi
tarball=$(realpath "$1")
cd "$(dirname "$0")/.."
core=${ANSIBLE_CORE:-$(sed -n 's/^ansible-core==//p' ansible/requirements.txt)}
python=${PYTHON:-/usr/bin/python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$(scripts/core-venv.sh ".venv-units/$core-py$pyver" "$core" "$python")
export HOME=$venv/home
mkdir -p "$HOME"

scratch=$(mktemp -d /tmp/ufwd-units.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
"$venv/bin/ansible-galaxy" collection install --offline --force -p "$scratch" "$tarball" >/dev/null
collection=$(echo "$scratch"/ansible_collections/*/*)
[[ -d $collection/tests/unit ]] || { echo "units: $tarball holds no tests/unit" >&2; exit 1; }
cd "$collection"

rc=0
"$venv/bin/ansible-test" units --local --requirements --color no --python "$pyver" || rc=$?

# The JUnit results: every test case, none failed, errored or skipped.
"$venv/bin/python" - "$rc" tests/output/junit >&3 <<'PY'
import glob, os, sys
import xml.etree.ElementTree as ET

rc, junit = int(sys.argv[1]), sys.argv[2]
cases = [c for path in glob.glob(os.path.join(junit, '*.xml')) for c in ET.parse(path).iter('testcase')]
bad = [c.get('classname', '') + '::' + c.get('name', '') for c in cases
       if any(c.find(k) is not None for k in ('failure', 'error', 'skipped'))]
ok = rc == 0 and cases and not bad
summary = 'units: %s, %d tests, %d failed or skipped%s' % (
    'pass' if ok else 'FAIL', len(cases), len(bad), (': ' + ', '.join(bad)) if bad else '')
if rc and not bad:
    summary += ', ansible-test exited %d' % rc
print(summary, file=sys.stderr)
print(summary)
sys.exit(0 if ok else 1)
PY
