#!/usr/bin/env bash
# Build every image the compose stack needs from Debian's packages and Maven
# Central only (no container registry): the local Debian base, meterwatch,
# and stand-ins for apache/kafka, redis and prom/prometheus. Grafana is not in
# Debian: the compose file keeps it behind the `grafana` profile.
#
#   bash deploy/compose/local/build-images.sh        prints KEY=IMAGE lines (an env file
#                                                    for docker-compose: METERWATCH_IMAGE, ...)
# Each image is tagged by a hash of its inputs and rebuilt only when they change.
# Needs: root, debootstrap, a running Docker engine, and the Kafka jars
# (`meterwatch dev fetch`; MW_CACHE_DIR, MW_KAFKA_VERSION as for the dev stack).
set -euo pipefail
shopt -s inherit_errexit
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/deploy/compose/local"
cd "$ROOT"
log() { printf '[build-images] %s\n' "$*" >&2; }

base="$(bash deploy/docker/make-local-base.sh)"

# -- meterwatch (rebuilt when its sources change; docker's layer cache does the rest)
mw_hash="$( { echo "$base"; tar -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --exclude='__pycache__' --exclude='*.pyc' --exclude='*.pem' \
    pyproject.toml constraints.txt README.md meterwatch baselines stream api notifier deploy/docker; } \
  | sha256sum | cut -c1-12)"
mw_image="meterwatch-local/meterwatch:$mw_hash"
if ! docker image inspect "$mw_image" >/dev/null 2>&1; then
  bash deploy/docker/build.sh --base "$base" --tag "$mw_image" --quiet >/dev/null
fi

# -- Kafka from the jars `meterwatch dev fetch` resolved
python="${PYTHON:-python3}"
[ -x "$ROOT/.venv/bin/python" ] && python="$ROOT/.venv/bin/python"
libs="$("$python" -c 'from meterwatch.cli.devstack import ensure_kafka_jars; from meterwatch.settings import Settings; print(ensure_kafka_jars(Settings()))')"
version="$("$python" -c 'from meterwatch.settings import Settings; print(Settings().kafka_version)')"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

build_aux() {  # build_aux NAME DOCKERFILE [extra context files...] -> prints the tag
  local name="$1" dockerfile="$2"; shift 2
  local hash tag
  hash="$( { echo "$base"; cat "$dockerfile" "$@"; if [ "$name" = kafka ]; then ls -l "$libs"; fi; } \
    | sha256sum | cut -c1-12)"
  tag="meterwatch-local/$name:$hash"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    log "building $tag"
    rm -rf "${ctx:?}"/* && cp "$dockerfile" "$ctx/Dockerfile"
    if [ $# -gt 0 ]; then cp "$@" "$ctx/"; fi
    if [ "$name" = kafka ]; then cp -r "$libs" "$ctx/libs" && rm -f "$ctx/libs/.complete"; fi
    docker build --force-rm --quiet --network host --build-arg "BASE_IMAGE=$base" -t "$tag" "$ctx" >&2
  fi
  echo "$tag"
}
kafka_image="$(build_aux kafka "$HERE/kafka.Dockerfile" "$HERE/kafka-entrypoint.py" "$HERE/log4j2.xml")"
redis_image="$(build_aux redis "$HERE/redis.Dockerfile")"
prometheus_image="$(build_aux prometheus "$HERE/prometheus.Dockerfile")"

log "images ready (kafka $version)"
echo "METERWATCH_IMAGE=$mw_image"
echo "KAFKA_IMAGE=$kafka_image"
echo "REDIS_IMAGE=$redis_image"
echo "PROMETHEUS_IMAGE=$prometheus_image"
