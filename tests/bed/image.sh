#!/bin/bash
# image.sh: build the tiny test image `ufwd-test:latest` and import it into one
# bed dockerd.
#
# Why it exists: the end-to-end bed has no registry access, so images cannot be
# pulled. We assemble a rootfs from Debian's busybox-static (shell, sleep,
# nslookup, wget, nc, ip, ...) plus our static /bin/testsrv (tests/bed/testsrv),
# tar it and `docker import` it.
#
# usage: tests/bed/image.sh SOCK [DOCKER_CLIENT]
#   SOCK           path of the dockerd unix socket (e.g. /run/ufwd-bed/h/docker.sock)
#   DOCKER_CLIENT  docker CLI to use (default: $DOCKER or `docker` in PATH)
# env: TESTSRV=/path/to/testsrv to skip the cargo build;
#      BED_CACHE (default /var/cache/ufw-docker-bed) holds the built tarball.
#
# The image's default CMD is `sleep infinity`. A container's PID 1 gets no
# SIGTERM it has no handler for: `testsrv serve` handles it (so `docker stop`
# and dockerd restarts are quick), busybox `sleep` does not (docker stop then
# waits 10 s): remove such containers with `docker rm -f` / `docker kill`.
# (Docker 28's `import --change` refuses STOPSIGNAL, so the image cannot fix it.)
# Example: docker run -d --name c1 -p 8080:80 -p 8081:81/udp ufwd-test \
#            /bin/testsrv serve --tcp 80 --udp 81 --name c1
set -euo pipefail

SOCK=${1:?usage: image.sh SOCK [DOCKER_CLIENT]}
DOCKER=${2:-${DOCKER:-docker}}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BED_CACHE:-/var/cache/ufw-docker-bed}
TAR=$CACHE/ufwd-test-rootfs.tar

build_testsrv() {
    if [[ -n ${TESTSRV:-} ]]; then echo "$TESTSRV"; return; fi
    local target=x86_64-unknown-linux-musl
    (cd "$HERE/testsrv" && cargo build --quiet --release --target "$target") >&2
    echo "$HERE/testsrv/target/$target/release/testsrv"
}

build_rootfs() {
    local bin root
    bin=$(build_testsrv)
    [[ -x /bin/busybox ]] || { echo "image.sh: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }
    ! command -v file >/dev/null || ! file -L /bin/busybox | grep -q dynamically || { echo "image.sh: /bin/busybox is not static" >&2; exit 1; }
    root=$(mktemp -d)
    trap 'rm -rf "$root"' RETURN
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var/tmp}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    cp /bin/busybox "$root/bin/busybox"
    install -m 0755 "$bin" "$root/bin/testsrv"
    local a
    for a in $(/bin/busybox --list); do
        [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    touch "$root/etc/hosts" "$root/etc/resolv.conf" "$root/etc/hostname"
    mkdir -p "$CACHE"
    local tmp
    tmp=$(mktemp "$TAR.XXXXXX") # several beds may build at once
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tmp" .
    mv "$tmp" "$TAR"
}

build_rootfs
"$DOCKER" -H "unix://$SOCK" import \
    -c 'CMD ["/bin/sleep", "infinity"]' \
    -c 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
    -m 'ufw-docker test bed image (busybox-static + testsrv)' \
    "$TAR" ufwd-test:latest >/dev/null
echo "image.sh: imported ufwd-test:latest into unix://$SOCK from $TAR"
