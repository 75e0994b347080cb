#!/usr/bin/env bash
# Makes DIR a virtualenv, from the Python interpreter given, holding one ansible-core and nothing
# else, for the collection's sanity tests (scripts/sanity.sh) and its compatibility matrix
# (scripts/compat.sh), which each need an ansible-core other than the controller venv's
# (scripts/ansible-venv.sh). VERSION is exact (2.19.14) or a minor (2.15: its latest patch on
# PyPI for that Python, looked up once per call). Idempotent: the venv is kept while its stamp
# (ansible-core version and interpreter) matches, and made again from scratch when it does not.
# Prints DIR's absolute path on stdout, everything else on stderr.
#
#   scripts/core-venv.sh DIR VERSION PYTHON
set -euo pipefail
exec 3>&1 1>&2

if (($# != 3)); then
    echo "usage: scripts/core-venv.sh DIR VERSION PYTHON" >&2
    exit 2
fi
dir=$1 version=$2 python=$3
[[ $dir == /* ]] || dir=$PWD/$dir
[[ $version =~ ^2\.[0-9]+(\.[0-9]+)?$ ]] || { echo "core-venv: VERSION must be 2.N or 2.N.P, not '$version'" >&2; exit 2; }
[[ -x $python ]] || { echo "core-venv: $python is not an executable" >&2; exit 1; }

# /usr/bin/python3 makes venvs only with python3-venv; pyenv's builds carry ensurepip.
if [[ $python == /usr/bin/* ]]; then
    "$(dirname "$0")/apt-ensure.sh" core-venv python3-venv
fi

pyver=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
if [[ ! -x $dir/bin/python ]] || ! "$dir/bin/python" -c '' 2>/dev/null ||
    [[ $(sed -n 's/^python=//p' "$dir/.core-venv" 2>/dev/null) != "$python $pyver" ]]; then
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    "$python" -m venv "$dir"
fi

pip=("$dir/bin/python" -m pip --disable-pip-version-check)
if [[ $version =~ ^2\.[0-9]+$ ]]; then
    # The latest patch of the minor that installs on this Python: what pip would pick, asked
    # without installing anything.
    spec="ansible-core~=$version.0"
    exact=$("${pip[@]}" install --quiet --dry-run --no-deps --ignore-installed --report - "$spec" |
        "$dir/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["metadata"]["version"])') ||
        { echo "core-venv: no ansible-core $version.x installs on Python $pyver" >&2; exit 1; }
else
    exact=$version
fi

want="ansible-core==$exact"
if [[ $(sed -n 's/^requirement=//p' "$dir/.core-venv" 2>/dev/null) != "$want" ]]; then
    echo "core-venv: installing $want into $dir (Python $pyver)"
    "${pip[@]}" install --quiet "$want"
    printf 'requirement=%s\npython=%s %s\n' "$want" "$python" "$pyver" >"$dir/.core-venv"
fi
echo "$dir" >&3
