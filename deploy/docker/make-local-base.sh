#!/usr/bin/env bash
# Build a Python 3.11 base image from Debian's own packages, for machines that
# reach Debian's package archive but no container registry (meterwatch's CI).
#
#   bash deploy/docker/make-local-base.sh          prints the image tag (builds it once)
#
# debootstrap (variant minbase) installs Debian bookworm with python3 (3.11),
# python3-venv and ca-certificates into a temporary directory, which
# `docker import` turns into an image. The tag carries a hash of this script, so
# a changed package list makes a new image and an unchanged one is reused:
# the first run takes a few minutes, later runs return at once.
# Pass the tag to the Dockerfile:  docker build --build-arg BASE_IMAGE=<tag> ...
# Users with registry access never need this: the Dockerfile's default base is
# the official python image.
#
# Environment: MW_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              MW_LOCAL_BASE_REPO (default meterwatch-local/debian-python).
# Needs: root, debootstrap, a running Docker engine.
set -euo pipefail

SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,tzdata
MIRROR="${MW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REPO="${MW_LOCAL_BASE_REPO:-meterwatch-local/debian-python}"
HASH="$( { cat "${BASH_SOURCE[0]}"; echo "$MIRROR"; } | sha256sum | cut -c1-12)"
TAG="$REPO:$SUITE-$HASH"

log() { printf '[make-local-base] %s\n' "$*" >&2; }

command -v docker >/dev/null || { log "docker (the client) is not installed: apt-get install -y docker.io"; exit 2; }
docker info >/dev/null 2>&1 || { log "the Docker engine does not answer (start it: dockerd, or systemctl start docker)"; exit 2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is not installed: apt-get install -y debootstrap"; exit 2; }
[ "$(id -u)" -eq 0 ] || { log "debootstrap needs root"; exit 2; }

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/mw-rootfs.XXXXXX")"
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT
log "debootstrap $SUITE ($PACKAGES) from $MIRROR into $ROOTFS"
start=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
  tail -n 30 "$ROOTFS.log" >&2; log "debootstrap failed (full log: $ROOTFS.log)"; exit 1; }
rm -f "$ROOTFS.log"

# slim it: package lists, caches, docs and man pages are not needed at run time
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/tmp/*
echo "deb $MIRROR $SUITE main" > "$ROOTFS/etc/apt/sources.list"
# `python` as in the official image (Debian ships only python3)
ln -sf python3 "$ROOTFS/usr/bin/python"
# as in Debian's official images: packages installed in a `docker build` never start services
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"

log "docker import -> $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  --message "meterwatch local base: Debian $SUITE minbase + $PACKAGES" - "$TAG" >/dev/null
log "built $TAG in $(( $(date +%s) - start )) s"
echo "$TAG"
