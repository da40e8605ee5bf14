#!/usr/bin/env bash
# Shared set-up for deploy/demo.sh, deploy/test.sh and .ci/run: everything a
# fresh Debian/Ubuntu machine needs, idempotent and quick when already done.
#   1. system packages when missing (apt-get, as root): Python >= 3.11 + venv,
#      Java 17+, Maven, redis-server; without root it says what to install;
#   2. the venv (MW_VENV, default .venv) with `pip install -c constraints.txt -e '.[dev]'`
#      (skipped when pyproject.toml and constraints.txt did not change);
#   3. the pinned Apache Kafka jars from Maven Central, cached under MW_CACHE_DIR.
# Source it (it exports PATH with the venv first) or run it.
set -euo pipefail

MW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MW_VENV="${MW_VENV:-$MW_ROOT/.venv}"
export MW_ROOT MW_VENV

mw_log() { printf '[meterwatch setup] %s\n' "$*" >&2; }

mw_python() {
  # the first python >= 3.11 on PATH
  local c
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

mw_system_packages() {
  local need=()
  mw_python >/dev/null || need+=(python3 python3-venv)
  if [ ! -x "$MW_VENV/bin/python" ] && py="$(mw_python)" && ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    need+=(python3-venv)
  fi
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    mw_log "installing system packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  else
    mw_log "missing system packages: ${need[*]}"
    mw_log "install them (Debian/Ubuntu: sudo apt-get install -y ${need[*]}) and run again"
    return 1
  fi
  if command -v java >/dev/null 2>&1; then
    local jv
    jv="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')"
    if [ -n "$jv" ] && [ "${jv%%.*}" -lt 17 ] 2>/dev/null; then
      mw_log "Java $jv found; Kafka 4 needs Java 17 or newer"; return 1
    fi
  fi
}

mw_venv() {
  if [ ! -x "$MW_VENV/bin/python" ]; then
    local py; py="$(mw_python)" || { mw_log "no Python >= 3.11 found"; return 1; }
    mw_log "creating the venv $MW_VENV with $py"
    "$py" -m venv "$MW_VENV"
  fi
  local stamp="$MW_VENV/.meterwatch-installed" want
  want="$(cat "$MW_ROOT/pyproject.toml" "$MW_ROOT/constraints.txt" | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$MW_VENV/bin/python" -c 'import meterwatch' 2>/dev/null; then
    mw_log "installing Python dependencies (pip install -c constraints.txt -e '.[dev]')"
    if ! (cd "$MW_ROOT" && "$MW_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c constraints.txt -e '.[dev]') >"$MW_VENV/pip-install.log" 2>&1; then
      tail -n 40 "$MW_VENV/pip-install.log" >&2
      mw_log "pip install failed; full log: $MW_VENV/pip-install.log"
      return 1
    fi
    echo "$want" > "$stamp"
  fi
  export PATH="$MW_VENV/bin:$PATH"
}

mw_kafka() {
  (cd "$MW_ROOT" && "$MW_VENV/bin/meterwatch" dev fetch >/dev/null)
}

mw_setup() {
  mw_system_packages
  mw_venv
  mw_kafka
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  mw_setup
  mw_log "ready: $MW_VENV/bin/meterwatch"
else
  mw_setup
fi
