#!/usr/bin/env bash
# Runs `ansible-test sanity` on the built collection, offline, and proves that no sanity test was
# silently left out.
#
# Why it exists: ansible-test runs every sanity test in a virtualenv of its own, made with
# `python -m venv --without-pip` and given pip by a bootstrap script that it downloads from
# ci-files.testing.ansible.com, which this machine does not reach (PyPI it does); `--docker` and
# `--venv` need the same download or a registry. The cache ansible-test looks in first,
# ~/.ansible/test/cache/get_pip_<pip version>.py, is its documented way around that
# (https://github.com/ansible/ansible/issues/77304), so this script writes that file itself: a
# few lines that run pip from the very pip wheel ansible-test asks for, downloaded from PyPI,
# doing what the upstream get-pip script does (`pip install --upgrade --force-reinstall` of the
# packages ansible-test names). Then `ansible-test sanity --local` installs each test's pinned
# requirements from PyPI into its own virtualenv, as it does everywhere. HOME points into the
# venv below while ansible-test runs, so that cache and those virtualenvs stay there, not in
# root's home.
#
# Multi-version tests (compile, import) run on every Python version this ansible-test supports:
# /usr/bin/pythonX.Y or pyenv's build of it. A version with neither is reported by ansible-test
# as skipped ("could not be found") and listed as such at the end. The tarball is installed into
# a scratch ansible_collections/NAMESPACE/NAME (the layout ansible-test requires), removed on exit.
# At the end every test ansible-test lists is accounted for, from its JUnit results and its
# output: passed, failed, not applicable (ansible-test found nothing for it to check), skipped
# with ansible-test's reason, crashed (ansible-test stopped in it) or never ran (ansible-test
# stopped before it). The exit code is 0 only when nothing failed or crashed and every test ran or
# was not applicable, bar Pythons missing from this machine; a test skipped for a missing
# requirement (a venv it could not make) fails the run.
#
#   scripts/sanity.sh dist/ufw_docker-ufw_docker-0.1.0.tar.gz
# env:
#   ANSIBLE_CORE   ansible-core version, 2.N.P or 2.N (its latest patch); default: the pin in
#                  ansible/requirements.txt
#   PYTHON         interpreter of the venv, hence the controller Python of the tests; default
#                  /usr/bin/python3
#   SANITY_PYTHON  X.Y: run the multi-version tests on that Python only (default: all)
#   SANITY_VENV    the venv (default .venv-sanity/ANSIBLE_CORE-pyX.Y); scripts/compat.sh passes
#                  its own
#
# Prints one summary line on stdout (for scripts/compat.sh); everything else goes to stderr.
set -euo pipefail
exec 3>&1 1>&2
# The tarball alone, whatever collections the caller's environment points at.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

if (($# != 1)) || [[ ! -f $1 ]]; then
    echo "usage: scripts/sanity.sh TARBALL (see the header for the env variables)" >&2
    exit 2
fi
tarball=$(realpath "$1")
cd "$(dirname "$0")/.."
core=${ANSIBLE_CORE:-$(sed -n 's/^ansible-core==//p' ansible/requirements.txt)}
python=${PYTHON:-/usr/bin/python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$(scripts/core-venv.sh "${SANITY_VENV:-.venv-sanity/$core-py$pyver}" "$core" "$python")
core_exact=$(sed -n 's/^requirement=ansible-core==//p' "$venv/.core-venv")
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
export HOME=$venv/home
mkdir -p "$HOME"

# The Python versions ansible-test supports, and the pip version its bootstrap installs in each.
versions=$("$venv/bin/python" - <<'PY'
import types
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
from ansible_test._internal.python_requirements import get_venv_packages
for v in SUPPORTED_PYTHON_VERSIONS:
    print(v, get_venv_packages(types.SimpleNamespace(version=v))["pip"])
PY
)

# The bootstrap of each of those pip versions, in the cache ansible-test reads before it
# downloads: the wheel from PyPI, and a script that runs it as the upstream get-pip does. Python 2
# may run it (ansible-core 2.15 still tests modules on 2.7), so it is written for both.
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
mapfile -t pip_versions < <(awk '{print $2}' <<<"$versions" | sort -u)
for pip_version in "${pip_versions[@]}"; do
    script=$cache/get_pip_${pip_version//./_}.py
    [[ -s $script ]] && compgen -G "$cache/pip-$pip_version-*.whl" >/dev/null && continue
    echo "sanity: pip $pip_version bootstrap for ansible-test, from PyPI"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: --dest "$cache" "pip==$pip_version"
    cat >"$script.tmp" <<PY
# Written by scripts/sanity.sh: ansible-test's pip bootstrap without its download. Runs pip
# $pip_version from its wheel beside this file (from PyPI) to install what ansible-test names,
# as the upstream get-pip script does.
import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, glob.glob(os.path.join(here, 'pip-$pip_version-*.whl'))[0])
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--upgrade', '--force-reinstall'] + args))
PY
    mv "$script.tmp" "$script"
done

# Interpreters for the multi-version tests: the machine's first, then pyenv's builds (appended,
# so that they only add pythonX.Y names the machine lacks). pyenv's shims leave PATH: they pick
# an interpreter by pyenv's settings, not by the name asked for.
clean=
IFS=: read -ra entries <<<"$PATH"
for dir in "${entries[@]}"; do
    [[ $dir == "$pyenv_root"/* || -z $dir ]] || clean+=${clean:+:}$dir
done
for dir in "$pyenv_root"/versions/*/bin; do
    [[ -d $dir ]] && clean+=:$dir
done
export PATH=$venv/bin:$clean
available=() missing=()
mapfile -t py_versions < <(awk '{print $1}' <<<"$versions")
for v in "${py_versions[@]}"; do
    if command -v "python$v" >/dev/null; then available+=("$v"); else missing+=("$v"); fi
done
echo "sanity: ansible-core $core_exact, controller Python $pyver; target Pythons found: ${available[*]}${missing:+; missing: ${missing[*]}}"
# ansible-test makes Python 2 venvs with virtualenv, run by any Python that has it (this venv's),
# and reads its version from `virtualenv --version` as 16.x prints it: the version ansible-test
# pins for that (ansible_test/_data/requirements/ansible-test.txt).
if grep -q '^2\.7 ' <<<"$versions" && command -v python2.7 >/dev/null &&
    [[ $("$venv/bin/python" -m virtualenv --version 2>/dev/null) != 16.7.12 ]]; then
    echo "sanity: virtualenv 16.7.12 into $venv, for the Python 2.7 venvs of ansible-test"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check virtualenv==16.7.12
fi
python_opt=()
if [[ -n ${SANITY_PYTHON:-} ]]; then
    python_opt=(--python "$SANITY_PYTHON")
    echo "sanity: multi-version tests on Python $SANITY_PYTHON only (SANITY_PYTHON)"
fi

scratch=$(mktemp -d /tmp/ufwd-sanity.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
"$venv/bin/ansible-galaxy" collection install --offline --force -p "$scratch" "$tarball" >/dev/null
collection=$(echo "$scratch"/ansible_collections/*/*)
[[ -f $collection/MANIFEST.json ]] || { echo "sanity: $tarball did not install as a collection" >&2; exit 1; }
cd "$collection"

tests=$("$venv/bin/ansible-test" sanity --list-tests)
rc=0
"$venv/bin/ansible-test" sanity --local --junit --color no "${python_opt[@]}" 2>&1 |
    tee "$scratch/ansible-test.log" || rc=$?

# Every test listed, accounted for from the JUnit results, and from the warnings of the tests
# that ansible-test skips without a reason in their result (the import test without a venv).
"$venv/bin/python" - "$rc" "$core_exact" "$tests" tests/output/junit "$scratch/ansible-test.log" >&3 <<'PY'
import glob, os, re, sys
import xml.etree.ElementTree as ET

rc, core, listed, junit, log = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
results = {}  # (test, python or '') -> (state, detail)
for path in glob.glob(os.path.join(junit, 'ansible-test-sanity-*.xml')):
    for case in ET.parse(path).iter('testcase'):
        m = re.fullmatch(r'(.+?)(?:-python-([0-9.]+))?', case.get('name'))
        skipped, failure = case.find('skipped'), case.find('failure')
        if failure is not None:
            state, detail = 'failed', ''
        elif skipped is not None:
            reason = skipped.get('message') or skipped.text or ''
            if reason.strip() in ('', 'No tests applicable.') or 'because it is unsupported' in reason:
                state, detail = 'not applicable', reason.strip()
            elif 'because it could not be found' in reason:
                state, detail = 'skipped', reason.strip()
            else:
                state, detail = 'SKIPPED', reason.strip()
        else:
            state, detail = 'passed', ''
        results[(m.group(1), m.group(2) or '')] = (state, detail)
warned = re.compile(r'^WARNING: (Skipping sanity test "([^"]+)" on Python ([0-9.]+) (?!because it is unsupported).*)$')
running = re.compile(r'^Running sanity test "([^"]+)"(?: on Python ([0-9.]+))?$')
started = []
for line in open(log, errors='replace'):
    m = warned.match(line.rstrip())
    if m:
        found = 'because it could not be found' in m.group(1)
        results[(m.group(2), m.group(3))] = ('skipped' if found else 'SKIPPED', m.group(1))
    m = running.match(line.rstrip())
    if m:
        started.append((m.group(1), m.group(2) or ''))
# A test that started and left no result is the one ansible-test stopped in (a crash).
for test, py in started:
    if not ((test, py) in results if py else any(k[0] == test for k in results)):
        results[(test, py)] = ('CRASHED', 'ansible-test stopped in it, see the traceback above')

err = sys.stderr
print('\nsanity: every test ansible-test lists, from its JUnit results:', file=err)
never_ran = [t for t in listed if not any(k[0] == t for k in results)]
per_test = {}
for test, py in results:
    per_test[test] = per_test.get(test, 0) + 1
version_key = lambda v: tuple(int(n) for n in v.split('.')) if v else ()
for (test, py), (state, detail) in sorted(results.items(), key=lambda kv: (kv[0][0], version_key(kv[0][1]))):
    # ansible-test names a single-version test's result after the controller Python too.
    label = test + (' (Python %s)' % py if py and per_test[test] > 1 else '')
    if detail == 'No tests applicable.':
        detail = 'nothing here for it to check'
    print('  %-42s %s%s' % (label, state, ': ' + detail if detail else ''), file=err)
for t in never_ran:
    print('  %-42s DID NOT RUN (ansible-test stopped before it)' % t, file=err)

count = lambda s: sum(1 for v in results.values() if v[0] == s)
names = lambda s: sorted({k[0] + ('-' + k[1] if k[1] and per_test[k[0]] > 1 else '') for k, v in results.items() if v[0] == s})
missing_py = sorted({k[1] for k, v in results.items() if v[0] == 'skipped'}, key=version_key)
bad_skips = count('SKIPPED')
ok = rc == 0 and not never_ran and not bad_skips and not count('failed') and not count('CRASHED')
summary = 'ansible-core %s: %s, %d passed' % (core, 'pass' if ok else 'FAIL', count('passed'))
if count('failed'):
    summary += ', %d failed (%s)' % (count('failed'), ', '.join(names('failed')))
if count('CRASHED'):
    summary += ', ansible-test crashed in %s' % ', '.join(names('CRASHED'))
summary += ', %d not applicable' % count('not applicable')
if missing_py:
    summary += ', %d skipped (no Python %s here)' % (count('skipped'), ', '.join(missing_py))
if bad_skips:
    summary += ', %d SKIPPED for a missing requirement (%s)' % (bad_skips, ', '.join(names('SKIPPED')))
if never_ran:
    summary += ', %d never ran (ansible-test stopped early)' % len(never_ran)
if rc and not (count('failed') or count('CRASHED') or never_ran or bad_skips):
    summary += ', ansible-test exited %d' % rc
print('sanity: ' + summary, file=err)
print(summary)
sys.exit(0 if ok else 1)
PY
