#!/usr/bin/env bash
# Shared set-up for deploy/demo.sh, deploy/test.sh and .ci/run: everything a
# fresh Debian/Ubuntu machine needs, idempotent and quick when already done.
#   1. system packages when missing (apt-get, as root): Python >= 3.11 + venv,
#      Java 17+, Maven, redis-server; without root it says what to install;
#   2. the venv (MW_VENV, default .venv) with `pip install -c constraints.txt -e '.[dev]'`
#      (skipped when pyproject.toml and constraints.txt did not change);
#   3. the pinned Apache Kafka jars from Maven Central, cached under MW_CACHE_DIR.
# mw_browser_packages (Debian's chromium + chromium-driver, for the workbench's browser
# test) is defined here and called by deploy/test.sh only.
# Source it (it exports PATH with the venv first) or run it. MW_SETUP_FUNCTIONS_ONLY=1
# when sourcing: define the functions, run nothing (tests).
# apt-get waits (up to MW_APT_LOCK_TIMEOUT_S, default 600) for another apt/dpkg process
# that holds the dpkg lock, and says which; pip and Maven report progress on the terminal
# (pip's own bar; Maven's download count) and one line per phase otherwise.
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

mw_lock_holder() {
  # "PID (name)" of the process holding a lock on file $1 (from /proc/locks), or nothing
  local ino pid
  ino="$(stat -c %i "$1" 2>/dev/null)" || return 0
  pid="$(awk -v ino="$ino" '{ n = split($6, a, ":"); if (a[n] == ino) { print $5; exit } }' /proc/locks 2>/dev/null)"
  [ -n "$pid" ] && echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?'))"
  return 0
}

mw_apt_lock() {
  # "LOCKFILE, held by process PID (name)" for the first apt/dpkg lock that is held, or nothing
  local lock holder
  for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock; do
    holder="$(mw_lock_holder "$lock")"
    [ -n "$holder" ] && { echo "$lock, held by process $holder"; return 0; }
  done
  return 0
}

mw_apt_get() {
  # apt-get that waits (MW_APT_LOCK_TIMEOUT_S, default 600) for another apt/dpkg process's lock
  # instead of failing with exit 100, and says what it waits for
  local timeout="${MW_APT_LOCK_TIMEOUT_S:-600}" deadline held said="" rc
  deadline=$(( SECONDS + timeout ))
  while :; do
    held="$(mw_apt_lock)"
    if [ -n "$held" ] && [ "$held" != "$said" ]; then
      mw_log "waiting (up to $(( deadline - SECONDS )) s) for the apt/dpkg lock $held"
      said="$held"
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$(( deadline > SECONDS ? deadline - SECONDS : 1 ))" "$@" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    # exit 100 with a lock still held (e.g. the lists lock of `apt-get update`): retry while time is left
    if [ "$rc" -ne 100 ] || [ "$SECONDS" -ge "$deadline" ] || [ -z "$(mw_apt_lock)" ]; then
      return "$rc"
    fi
    sleep 3
  done
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
    mw_apt_get update -q >/dev/null
    mw_apt_get install -y -q --no-install-recommends "${need[@]}" >/dev/null
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

mw_browser_packages() {
  # Debian's chromium and chromium-driver: only the workbench's browser test needs them
  # (deploy/test.sh calls this; the demo does not). Without root it says what to install.
  local need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    mw_log "installing the browser for the workbench's browser test: ${need[*]}"
    mw_apt_get update -q >/dev/null || return 1
    mw_apt_get install -y -q --no-install-recommends "${need[@]}" >/dev/null || return 1
  else
    mw_log "missing system packages for the browser test: ${need[*]}"
    mw_log "install them (Debian: sudo apt-get install -y ${need[*]}); the browser test fails without them"
    return 1
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
    local log="$MW_VENV/pip-install.log" t0=$SECONDS rc
    mw_log "installing Python dependencies (pip install -c constraints.txt -e '.[dev]'; 2-3 minutes the first time; log: $log)"
    rc=0
    if [ -t 2 ]; then  # a terminal: pip's own progress there (the log gets only the summary)
      (cd "$MW_ROOT" && "$MW_VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on \
        -c constraints.txt -e '.[dev]') >&2 || rc=$?
      echo "pip install exit status $rc (output shown on the terminal)" >"$log"
    else  # quiet: the phase lines above and below say what happens
      (cd "$MW_ROOT" && "$MW_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c constraints.txt -e '.[dev]') >"$log" 2>&1 || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
      tail -n 40 "$log" >&2
      mw_log "pip install failed; full log: $log"
      return 1
    fi
    mw_log "Python dependencies installed in $(( SECONDS - t0 )) s"
    echo "$want" > "$stamp"
  fi
  export PATH="$MW_VENV/bin:$PATH"
}

mw_kafka() {
  # quick when cached; otherwise it says what it fetches and counts Maven's downloads (stderr)
  (cd "$MW_ROOT" && "$MW_VENV/bin/meterwatch" dev fetch >/dev/null)
}

mw_setup() {
  mw_system_packages
  mw_venv
  mw_kafka
}

if [ "${MW_SETUP_FUNCTIONS_ONLY:-0}" = 1 ]; then
  :
elif [ "${BASH_SOURCE[0]}" = "$0" ]; then
  mw_setup
  mw_log "ready: $MW_VENV/bin/meterwatch (not on PATH: run 'source $MW_VENV/bin/activate' or use the full path)"
else
  mw_setup
fi
