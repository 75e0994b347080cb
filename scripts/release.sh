#!/usr/bin/env bash
# `make release`: builds the release into a fresh dist/ and checks it before anything is
# published:
#   dist/ufw_docker-ufw_docker-VERSION.tar.gz   the collection (scripts/build-collection.sh),
#                                               checked by scripts/check-collection.sh (file
#                                               list, ansible-doc, ansible-lint, galaxy-importer,
#                                               ansible-test sanity)
#   dist/ufw_docker-VERSION-x86_64-linux        the static builds, for hosts without Ansible
#   dist/ufw_docker-VERSION-aarch64-linux
#   dist/THIRD-PARTY-LICENSES.md                the crates compiled into those builds
#   dist/SHA256SUMS                             of the four files above (sha256sum -c SHA256SUMS)
# A release names a public https:// repository (UFW_DOCKER_REPOSITORY, or the origin remote).
# --unpublished (make test) accepts any repository address scripts/repository-url.sh gives.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
--unpublished) scripts/repository-url.sh >/dev/null ;;
"") scripts/repository-url.sh --public >/dev/null ;;
*) echo "usage: scripts/release.sh [--unpublished]" >&2; exit 2 ;;
esac

version=$(awk '$1 == "version:" {print $2}' ansible/galaxy.yml)
scripts/changelog-check.sh >&2
rm -rf dist
tarball=$(scripts/build-collection.sh)
[ "$tarball" = "dist/ufw_docker-ufw_docker-$version.tar.gz" ] ||
    { echo "release: build-collection.sh made $tarball, not the tarball of version $version" >&2; exit 1; }
scripts/check-collection.sh "$tarball" >&2

for arch in x86_64 aarch64; do
    install -m 0755 "ansible/binaries/ufw_docker-$arch" "dist/ufw_docker-$version-$arch-linux"
done
tar xzf "$tarball" -C dist THIRD-PARTY-LICENSES.md
files=("${tarball#dist/}" "ufw_docker-$version-x86_64-linux" "ufw_docker-$version-aarch64-linux" THIRD-PARTY-LICENSES.md)
(cd dist && sha256sum "${files[@]}" >SHA256SUMS && sha256sum --check --quiet SHA256SUMS)
actual=$(cd dist && ls -A | sort | paste -sd' ')
expected=$(printf '%s\n' "${files[@]}" SHA256SUMS | sort | paste -sd' ')
[ "$actual" = "$expected" ] || { echo "release: dist/ holds '$actual', expected '$expected'" >&2; exit 1; }
echo "release: dist/ holds the release of ufw_docker $version, checked:" >&2
(cd dist && cat SHA256SUMS) >&2
