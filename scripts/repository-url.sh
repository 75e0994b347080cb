#!/usr/bin/env bash
# Prints the address of the repository the collection is built from, for galaxy.yml's
# `repository` (Galaxy requires one): UFW_DOCKER_REPOSITORY when set, else this checkout's
# `origin` remote, else the checkout itself as a file:// URL. With --public, only an https://
# address is accepted (a release for Galaxy must point where its users can read the source).
#
# Why it exists: no address is true of every clone, so galaxy.yml in git has none, and the build
# (scripts/build-collection.sh) and the release (scripts/release.sh) take it from here.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${UFW_DOCKER_REPOSITORY:-}
if [ -z "$url" ]; then
    url=$(git remote get-url origin 2>/dev/null || true)
    case $url in
    "") url="file://$PWD" ;;
    /*) url="file://$url" ;;
    esac
fi
case $url in
https://* | http://* | file:///*) ;;
*)
    echo "repository-url: '$url' is not a URL Galaxy can show; set UFW_DOCKER_REPOSITORY=https://..." >&2
    exit 1
    ;;
esac
if [ "${1:-}" = --public ] && [ "${url#https://}" = "$url" ]; then
    echo "repository-url: a release names a public https:// repository, not '$url'; set" \
        "UFW_DOCKER_REPOSITORY=https://... (where the source of this release is published)" >&2
    exit 1
fi
echo "$url"
