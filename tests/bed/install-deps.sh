#!/bin/bash
# install-deps.sh: install everything the ufw-docker end-to-end test bed needs
# on a fresh Debian bookworm machine (run as root; idempotent).
#
# Why it exists: machines are not kept between sessions/CI runs, so the bed
# must be able to install itself. Besides bookworm's packages it needs a
# second, current Docker (28.x) to test against; Debian forky ships one as
# docker.io/docker-cli. We fetch those two .debs with a PRIVATE apt
# configuration (own sources list, lists, cache and an empty dpkg status
# under $BED_CACHE/apt; the machine's apt sources are never touched) and only
# `dpkg -x` them into $BED_CACHE/docker28. That dockerd runs against
# bookworm's containerd and runc (started per bed by dockerd.sh).
#
# usage: tests/bed/install-deps.sh            (env BED_CACHE, default /var/cache/ufw-docker-bed)
# Trust: forky's InRelease is checked against bookworm's own
# /usr/share/keyrings/debian-archive-keyring.gpg (it is signed by both the
# 12/bookworm and 13/trixie archive keys, and deb12u2 of the keyring has both);
# apt-get download then checks each .deb against the signed Packages hashes.
set -euo pipefail

CACHE=${BED_CACHE:-/var/cache/ufw-docker-bed}
APTDIR=$CACHE/apt
D28=$CACHE/docker28
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
export DEBIAN_FRONTEND=noninteractive

[[ $(id -u) == 0 ]] || { echo "install-deps.sh: run as root" >&2; exit 1; }

# 1. bookworm packages (only when something is missing: apt-get update is slow). Installing
# starts no docker/containerd service (scripts/apt-ensure.sh): the bed starts its own daemons
# per netns.
"$(dirname "$0")/../../scripts/apt-ensure.sh" install-deps.sh iptables ufw docker.io containerd \
    runc tini busybox-static iproute2 conntrack procps util-linux kmod debian-archive-keyring

# 2. the mirror the machine already uses for bookworm (deb822 or one-line format).
mirror=""
if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    # paragraph mode: one deb822 stanza per record
    mirror=$(awk -v RS= '/(^|\n)Suites:[^\n]* bookworm( |\n|$)/ && match($0, /(^|\n)URIs: *[^ \n]+/) {
        u = substr($0, RSTART, RLENGTH); sub(/^\n?URIs: */, "", u); print u; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# 3. Docker 28 from forky, with a private apt configuration.
if [[ ! -x $D28/usr/sbin/dockerd || ! -x $D28/usr/bin/docker || ! -x $D28/usr/sbin/docker-proxy ]]; then
    mkdir -p "$APTDIR"/{etc/sources.list.d,etc/preferences.d,lists/partial,archives/partial,debs}
    cat >"$APTDIR/etc/sources.list.d/forky.sources" <<SRC
Types: deb
URIs: $mirror
Suites: forky
Components: main
Signed-By: $KEYRING
SRC
    apt_private=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$APTDIR/etc/sources.list.d"
        -o "Dir::Etc::PreferencesParts=$APTDIR/etc/preferences.d"
        -o "Dir::State::Lists=$APTDIR/lists"
        -o "Dir::State::status=/dev/null"
        -o "Dir::Cache=$APTDIR"
        -o "Dir::Cache::archives=$APTDIR/archives"
        -o "Debug::NoLocking=1"
        -o "APT::Sandbox::User=root"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
        -o "Acquire::Languages=none"
    )
    echo "install-deps.sh: fetching forky's docker.io/docker-cli from $mirror (private apt config in $APTDIR)"
    apt-get "${apt_private[@]}" -qq update
    rm -f "$APTDIR"/debs/*.deb
    (cd "$APTDIR/debs" && apt-get "${apt_private[@]}" -qq download docker.io docker-cli)
    rm -rf "$D28.tmp"
    mkdir -p "$D28.tmp"
    for deb in "$APTDIR"/debs/*.deb; do dpkg -x "$deb" "$D28.tmp"; done
    # docker-init -> tini-static comes from another package (tini); point it
    # at bookworm's copy so `docker run --init` works with dockerd 28 too.
    if [[ -x /usr/bin/tini-static ]]; then ln -sfn /usr/bin/tini-static "$D28.tmp/usr/bin/docker-init"; fi
    rm -rf "$D28"
    mv "$D28.tmp" "$D28"
fi

# 4. the Rust target for the static testsrv (if rustup manages this toolchain).
if command -v rustup >/dev/null; then
    [[ $'\n'$(rustup target list --installed 2>/dev/null)$'\n' == *$'\nx86_64-unknown-linux-musl\n'* ]] ||
        rustup target add x86_64-unknown-linux-musl
fi

# 5. br_netfilter: dockerd loads it itself if /proc/sys/net/bridge is missing,
#    but only when modprobe works; say so early.
if [[ ! -e /proc/sys/net/bridge ]] && ! modprobe br_netfilter 2>/dev/null; then
    echo "install-deps.sh: warning: br_netfilter not available (no /proc/sys/net/bridge)" >&2
fi

echo "install-deps.sh: dockerd 20: /usr/sbin/dockerd ($(/usr/sbin/dockerd --version))"
echo "install-deps.sh: dockerd 28: $D28/usr/sbin/dockerd ($("$D28/usr/sbin/dockerd" --version))"
echo "install-deps.sh: containerd: $(command -v containerd) ($(containerd --version | awk '{print $3}')), runc: $(command -v runc) ($(runc --version | head -n1 | awk '{print $3}'))"
