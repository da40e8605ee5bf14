#!/usr/bin/env bash
# Build the meterwatch image from a clean context (only what the image needs:
# no .venv, no .git, no data), with the Dockerfile next to this script.
#
#   bash deploy/docker/build.sh [--local-base] [--base IMAGE] [--tag TAG] [--quiet]
#
#   --local-base   build FROM the base made by make-local-base.sh (Debian packages
#                  only; for machines without a container registry, e.g. CI)
#   --base IMAGE   build FROM IMAGE (default: the Dockerfile's, the official python image)
#   --tag TAG      image tag (default meterwatch:<version from pyproject.toml>)
#   --ca-bundle F  CA bundle pip trusts during the build (TLS-intercepting proxies);
#                  default: $PIP_CERT when set. Build stage only, never in the image.
# The build runs with --network host so pip reaches the package index on machines
# whose Docker bridge has no route out. Prints the tag on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
base="" tag="" quiet=() ca="${PIP_CERT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) base="$(bash deploy/docker/make-local-base.sh)" ;;
    --base) base="$2"; shift ;;
    --tag) tag="$2"; shift ;;
    --ca-bundle) ca="$2"; shift ;;
    --quiet|-q) quiet=(--quiet) ;;
    *) echo "usage: $0 [--local-base] [--base IMAGE] [--tag TAG] [--ca-bundle FILE] [--quiet]" >&2; exit 2 ;;
  esac
  shift
done
version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
tag="${tag:-meterwatch:$version}"
args=(--force-rm --network host -f deploy/docker/Dockerfile -t "$tag")
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")
start=$(date +%s)
ca_dir="$(mktemp -d)"
trap 'rm -rf "$ca_dir"' EXIT
mkdir -p "$ca_dir/deploy/docker/build-ca"
if [ -n "$ca" ]; then
  [ -r "$ca" ] || { echo "[build.sh] CA bundle $ca is not readable" >&2; exit 2; }
  cp "$ca" "$ca_dir/deploy/docker/build-ca/extra.pem"
fi
tar -c -f "$ca_dir/context.tar" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.pem' \
    pyproject.toml constraints.txt README.md meterwatch baselines stream api notifier deploy/docker
tar -C "$ca_dir" -r -f "$ca_dir/context.tar" deploy/docker/build-ca  # + the build-only CA bundle
docker build "${quiet[@]}" "${args[@]}" - < "$ca_dir/context.tar" >&2
echo "[build.sh] built $tag${base:+ FROM $base} in $(( $(date +%s) - start )) s" >&2
echo "$tag"
