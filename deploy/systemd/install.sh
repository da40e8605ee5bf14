#!/usr/bin/env bash
# Bare-metal install of meterwatch with systemd (Debian/Ubuntu, as root):
#   bash deploy/systemd/install.sh [WORKERS]     (default 2 workers: w1, w2)
# Creates the meterwatch system user, a virtualenv in /opt/meterwatch with the locked
# dependencies, /etc/meterwatch/meterwatch.env (from the example, if missing), one
# worker-<name>.env per worker (its metrics port), installs the units and enables
# meterwatch.target. Edit /etc/meterwatch/meterwatch.env, then: systemctl start meterwatch.target
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
workers="${1:-2}"
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
id meterwatch >/dev/null 2>&1 || useradd --system --home-dir /var/lib/meterwatch --no-create-home \
  --shell /usr/sbin/nologin meterwatch
python3 -m venv /opt/meterwatch
/opt/meterwatch/bin/pip install -q -c "$ROOT/constraints.txt" "$ROOT"
install -d -m 0755 /opt/meterwatch/share/doc
install -m 0644 "$ROOT/docs/deployment.md" /opt/meterwatch/share/doc/deployment.md
install -d -m 0750 -o root -g meterwatch /etc/meterwatch
[ -f /etc/meterwatch/meterwatch.env ] || \
  install -m 0640 -o root -g meterwatch "$ROOT/deploy/systemd/meterwatch.env.example" /etc/meterwatch/meterwatch.env
for i in $(seq 1 "$workers"); do
  f="/etc/meterwatch/worker-w$i.env"
  [ -f "$f" ] || echo "MW_WORKER_METRICS_PORT=$((9101 + i))" | install -m 0640 -o root -g meterwatch /dev/stdin "$f"
done
install -m 0644 "$ROOT"/deploy/systemd/meterwatch-worker@.service "$ROOT"/deploy/systemd/meterwatch-api.service \
  "$ROOT"/deploy/systemd/meterwatch-notifier.service "$ROOT"/deploy/systemd/meterwatch.target /etc/systemd/system/
systemctl daemon-reload
systemctl enable meterwatch.target meterwatch-api.service meterwatch-notifier.service
for i in $(seq 1 "$workers"); do systemctl enable "meterwatch-worker@w$i.service"; done
echo "installed; edit /etc/meterwatch/meterwatch.env, then: systemctl start meterwatch.target"
