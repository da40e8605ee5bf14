#!/usr/bin/env bash
# Regenerate constraints.txt (the lock) from the project's venv:
# every installed distribution at its exact version, minus meterwatch itself.
# Usage: bash deploy/lock.sh   (after adding a dependency to pyproject.toml and
# installing it with: pip install -c constraints.txt -e '.[dev]' <new-package>)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MW_VENV:-$ROOT/.venv}/bin/python"
{
  echo "# meterwatch dependency lock: exact versions for every install"
  echo "#   pip install -c constraints.txt -e '.[dev]'"
  echo "# Regenerate with: bash deploy/lock.sh (Python $("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])'))"
  "$PY" -m pip freeze --exclude-editable --all | grep -v -i -E '^(meterwatch|pip|setuptools|wheel)==' | LC_ALL=C sort -f
} > "$ROOT/constraints.txt.new"
mv "$ROOT/constraints.txt.new" "$ROOT/constraints.txt"
echo "wrote $ROOT/constraints.txt ($(grep -c '==' "$ROOT/constraints.txt") pins)"
