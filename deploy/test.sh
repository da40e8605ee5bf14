#!/usr/bin/env bash
# README command 2: set up (deploy/setup.sh, plus Debian's chromium and chromium-driver for
# the workbench's browser test), bring the local stack up, run
# ruff, mypy and the whole pytest suite against the real Kafka and Redis.
# Exits non-zero if any of them fails. A stack this script started is stopped
# at the end (set MW_KEEP_STACK=1 to keep it); a running one is reused and left alone.
# Extra arguments go to pytest, e.g.  bash deploy/test.sh -x tests/integration/cli
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/setup.sh
source deploy/setup.sh || exit 1
set +e
# the workbench's browser test drives Debian's chromium (it fails, never skips, without it)
browser_ok=1
mw_browser_packages || browser_ok=0

STACK_DIR="$(python -c 'from meterwatch.settings import Settings; print(Settings().stack_dir)')"
MARKER="$STACK_DIR/.started-by-test"
started_stack=0
if ! meterwatch dev status >/dev/null 2>&1; then
  started_stack=1
  mkdir -p "$STACK_DIR" && touch "$MARKER"
fi
stop_stack() {
  if [ "$started_stack" = 1 ] && [ "${MW_KEEP_STACK:-0}" != 1 ]; then
    started_stack=0
    echo "== meterwatch dev down"
    meterwatch dev down && rm -f "$MARKER"
  fi
}
trap stop_stack EXIT

echo "== meterwatch dev up"
meterwatch dev up || { echo "the local stack did not start" >&2; exit 1; }

failed=()
[ "$browser_ok" = 1 ] || failed+=("chromium (browser test)")
echo "== ruff check"
ruff check . || failed+=(ruff)
echo "== mypy (strict: every package, tests, bench, eval; files in pyproject.toml)"
mypy || failed+=(mypy)
echo "== lint-imports (the layers of docs/INTERFACES.md, contracts in pyproject.toml)"
lint-imports || failed+=(lint-imports)
echo "== pytest"
pytest --durations=15 "$@"
rc=$?
[ $rc -ne 0 ] && failed+=("pytest(exit $rc)")

stop_stack || failed+=("dev down")

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all checks passed"
