#!/usr/bin/env bash
# Builds the production Dockerfile on a machine that cannot reach Docker Hub or Microsoft's
# repository (this project's dev machines and CI): prints the built image's ID on stdout (the ID,
# not the tag, so a concurrent build of the same tag cannot swap the image under the caller).
#
# - The base image (PYTHON_IMAGE) is made locally with debootstrap: Debian bookworm + python3.11 +
#   pip, the same Debian release and Python minor version as python:3.11-slim-bookworm. It is
#   cached in podman's storage and as a tarball under .cache/image/ (git- and docker-ignored), keyed
#   by its recipe, so only the first run pays for debootstrap. It trusts the build host's CA bundle
#   (SSL_CERT_FILE, else Debian's), so pip reaches PyPI from a machine behind a TLS-intercepting
#   proxy, as this one is; production images never see this base.
# - INSTALL_MSODBCSQL18=no switches off Microsoft's repository step: the image then has FreeTDS
#   only. Production builds keep the default (yes).
# - podman builds with --isolation chroot (no container runtime or cgroups needed); the image can
#   then be mounted and its command run under chroot (tests/integration/test_image.py).
#
# Extra arguments go to `podman build` (a later --build-arg wins). Needs root, podman and debootstrap (scripts/system-packages.sh --image). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=python3.11,python3-pip,python-is-python3,ca-certificates
tag=${FLUXION_IMAGE_TAG:-localhost/fluxion-etl:here}
host_cas=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

# The base's recipe names it: change the recipe (or the host's CAs) and a new base is made.
key=$( (printf '%s\n' "$suite" "$packages" v1; cat "$host_cas") | sha256sum | cut -c1-12)
base=localhost/fluxion-python-base:$key
cache=.cache/image
tarball=$cache/python-base-$key.tar

if ! podman image exists "$base"; then
    if [[ ! -s $tarball ]]; then
        mkdir -p "$cache"
        rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
        trap 'rm -rf "$rootfs"' EXIT
        echo "debootstrap $suite ($packages) from $mirror ..." >&2
        debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
        # Like python:3.11-slim: root's pip installs into /usr/local (no PEP 668 marker), no apt
        # lists or downloaded packages left in the base.
        rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
        # The host's CAs, where update-ca-certificates keeps them if ca-certificates is reconfigured.
        cp "$host_cas" "$rootfs"/usr/local/share/ca-certificates/build-host.crt
        cat "$host_cas" >> "$rootfs"/etc/ssl/certs/ca-certificates.crt
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
        tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$rootfs"
        trap - EXIT
    fi
    podman import --quiet "$tarball" "$base" >&2
fi

mkdir -p "$cache"
iidfile=$(mktemp "$cache/iid.XXXXXX")
trap 'rm -f "$iidfile"' EXIT
podman build --isolation chroot --pull=never \
    --build-arg PYTHON_IMAGE="$base" --build-arg INSTALL_MSODBCSQL18=no \
    --iidfile "$iidfile" --tag "$tag" "$@" . >&2
cat "$iidfile"
echo
