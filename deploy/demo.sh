#!/usr/bin/env bash
# README command 1: the whole meterwatch system on the local stack.
#   bash deploy/demo.sh          set up (deploy/setup.sh), `meterwatch dev up`, start the
#                                services that exist (worker, api, notifier) in the
#                                background, issue a demo ops token, feed synthetic
#                                households (`meterwatch simulate`), print where to look
#                                (the workbench URL and a manager's sign-in token among it)
#   bash deploy/demo.sh status   what runs
#   bash deploy/demo.sh stop     stop the services and the stack (nothing left running)
# Logs: $MW_DATA_DIR/stack/logs/  (default ~/.local/share/meterwatch/stack/logs)
# Demo size: MW_DEMO_CUSTOMERS (default 100), MW_DEMO_DAYS (default 7: the sudden-increase
# rule needs 4 high days of 5, so a surge needs a few days to be told); MW_DEMO_WAIT_S
# (default 90): how long to wait for the first segments, and then for the surged households'
# alerts, from the API (0: do not wait); MW_DEMO_TARIFF_PLAN (default cn-zj-residential-tou,
# peak/valley + annual tiers: alerts quote the bill in yuan; empty: no plan, no money).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
action="${1:-up}"

# shellcheck source=deploy/setup.sh
source deploy/setup.sh

STACK_DIR="$(python -c 'from meterwatch.settings import Settings; print(Settings().stack_dir)')"
RUN_DIR="$STACK_DIR/demo"
LOG_DIR="$STACK_DIR/logs"
SERVICES=(worker api notifier)
mkdir -p "$RUN_DIR" "$LOG_DIR"

has_command() { meterwatch "$1" --help >/dev/null 2>&1; }

svc_pid() {  # the pid of a running demo service, or nothing
  local f="$RUN_DIR/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  if [ -d "/proc/$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "meterwatch $1"; then
    echo "$pid"
  else
    return 1
  fi
}

start_service() {
  local name="$1"; shift
  if ! has_command "$name"; then
    echo "  $name: not available yet (no \`meterwatch $name\`), skipped"
    return 0
  fi
  if pid="$(svc_pid "$name")"; then
    echo "  $name: already running (pid $pid)"
    return 0
  fi
  setsid nohup meterwatch "$name" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! > "$RUN_DIR/$name.pid"
  echo "  $name: started (pid $!), log $LOG_DIR/$name.log"
}

stop_service() {
  local name="$1" pid i
  if pid="$(svc_pid "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    echo "  $name: stopped"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

workbench_lines() {
  # the account manager's workbench: its URL and a sign-in token of the surged household's manager
  # (the token itself only on a terminal, never in a captured log; the file is mode 600)
  local manager token_file="$RUN_DIR/manager-token"
  manager="$(sed -n 2p "$RUN_DIR/surged-id" 2>/dev/null || true)"
  rm -f "$token_file"
  if [ -n "$manager" ] && has_command token; then
    (umask 077; meterwatch token create --role manager --manager-id "$manager" \
      --label "demo workbench $(date -u +%FT%TZ)" > "$token_file.new") && mv "$token_file.new" "$token_file"
  fi
  echo
  echo "Workbench (the account manager's page): http://127.0.0.1:$api_port/"
  if [ -s "$token_file" ]; then
    echo "  sign in as $manager (the manager of $surged_id) with the token in $token_file"
    if [ -t 1 ]; then echo "  sign-in token: $(cat "$token_file")"; fi
  fi
  echo "  or as ops (every customer) with the token in $RUN_DIR/ops-token"
}

wait_http() {  # wait_http URL SECONDS
  local i
  for i in $(seq 1 $(( $2 * 4 ))); do
    python - "$1" <<'PY' && return 0
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except Exception:
    sys.exit(1)
PY
    sleep 0.25
  done
  return 1
}

case "$action" in
  up|start)
    meterwatch dev up
    echo "== services"
    start_service worker
    start_service api
    start_service notifier
    sleep 3
    for s in "${SERVICES[@]}"; do
      if [ -f "$RUN_DIR/$s.pid" ] && ! svc_pid "$s" >/dev/null; then
        echo "  $s: exited right after start; see $LOG_DIR/$s.log:"
        tail -n 5 "$LOG_DIR/$s.log" | sed 's/^/      /'
        rm -f "$RUN_DIR/$s.pid"
      fi
    done
    api_port="$(python -c 'from meterwatch.settings import Settings; print(Settings().api_port)')"
    notifier_port="$(python -c 'from meterwatch.settings import Settings; print(Settings().notifier_port)')"
    if svc_pid api >/dev/null; then
      wait_http "http://127.0.0.1:$api_port/healthz" 60 || echo "  api: not answering yet; see $LOG_DIR/api.log"
    fi
    if svc_pid notifier >/dev/null; then
      wait_http "http://127.0.0.1:$notifier_port/healthz" 60 || echo "  notifier: not answering yet; see $LOG_DIR/notifier.log"
    fi
    if has_command token; then  # a token for this run (the previous run's may name a wiped Redis)
      (umask 077; meterwatch token create --role ops --label "demo $(date -u +%FT%TZ)" > "$RUN_DIR/ops-token.new") \
        && mv "$RUN_DIR/ops-token.new" "$RUN_DIR/ops-token"
    fi
    rm -f "$RUN_DIR/surged-id"
    if has_command simulate; then
      plan="${MW_DEMO_TARIFF_PLAN-cn-zj-residential-tou}"
      echo "== demo data: meterwatch simulate --customers ${MW_DEMO_CUSTOMERS:-100} --days ${MW_DEMO_DAYS:-7}${plan:+ --tariff-plan $plan}"
      meterwatch simulate --customers "${MW_DEMO_CUSTOMERS:-100}" --days "${MW_DEMO_DAYS:-7}" \
        --surge-share 0.1 ${plan:+--tariff-plan "$plan"} >"$LOG_DIR/simulate.log" 2>&1 \
        && tail -n 15 "$LOG_DIR/simulate.log" \
        || echo "  simulate failed; see $LOG_DIR/simulate.log"
    fi
    wait_s="${MW_DEMO_WAIT_S:-90}"
    if [ "$wait_s" -gt 0 ] && svc_pid api >/dev/null && svc_pid worker >/dev/null && [ -s "$RUN_DIR/ops-token" ]; then
      echo "== waiting for the worker's first segments (up to $wait_s s)"
      python - "http://127.0.0.1:$api_port/v1/segments" "$RUN_DIR/ops-token" "$wait_s" <<'PY' || echo "  no segments yet; see $LOG_DIR/worker.log"
import json, sys, time, urllib.request
url, token = sys.argv[1], open(sys.argv[2]).read().strip()
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    try:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        body = json.load(urllib.request.urlopen(req, timeout=5))
    except Exception:
        body = None
    segments = body.get("segments", body) if isinstance(body, dict) else body
    if segments:
        for seg in segments:
            print(f"  segment {seg.get('id')}: {seg.get('label')} ({seg.get('size')} customers)")
        sys.exit(0)
    time.sleep(3)
sys.exit(1)
PY
      echo "== waiting for the surged households' alerts (up to $wait_s s)"
      python - "http://127.0.0.1:$api_port" "$RUN_DIR/ops-token" "$wait_s" "$LOG_DIR/simulate.log" "$RUN_DIR/surged-id" <<'PY' || echo "  no alerts yet; see $LOG_DIR/worker.log"
import json, re, sys, time, urllib.request
base, token, wait_s, log = sys.argv[1], open(sys.argv[2]).read().strip(), float(sys.argv[3]), sys.argv[4]
surged_id_file = sys.argv[5]
surged = {}
for line in open(log, encoding="utf-8"):
    m = re.match(r"^  (\S+) x([0-9.]+) from (\S+)$", line.rstrip("\n"))
    if m:
        surged[m.group(1)] = float(m.group(2))
if not surged:
    print("  (no surges injected)")
    sys.exit(0)
deadline = time.time() + wait_s
found = {}
while True:
    for cid in surged:
        if cid in found:
            continue
        req = urllib.request.Request(f"{base}/v1/customers/{cid}/alerts", headers={"Authorization": f"Bearer {token}"})
        try:
            body = json.load(urllib.request.urlopen(req, timeout=5))
        except Exception:
            continue
        hits = [a for a in body.get("alerts", []) if str(a.get("rule", "")).startswith("sudden_increase")]
        if hits:
            found[cid] = hits[0]
    if len(found) == len(surged) or time.time() >= deadline:
        break
    time.sleep(3)
for cid in sorted(found):
    a = found[cid]
    to = "manager + customer SMS (if consented)" if a.get("customer_facing") else "manager only"
    en = a.get("explanation", {}).get("en")
    m = a.get("money") or {}
    bill = f" [bill {m['currency']} {m['to_date']} to date, {m['projected']} projected]" if m.get("projected") is not None else ""
    print(f"  {cid} (injected x{surged[cid]:.1f}): {a['rule']}, {a.get('severity')}, {to}: {en}{bill}")
print(f"  sudden-increase alerts for {len(found)} of {len(surged)} surged households")
if found:  # the demo's closing lines show this household's alerts with curl, and its manager's workbench
    first = sorted(found)[0]
    open(surged_id_file, "w").write(first + "\n" + str(found[first].get("manager_id") or "") + "\n")
sys.exit(0 if found else 1)
PY
    fi
    echo
    echo "meterwatch demo is running."
    echo "  Kafka: $(python -c 'from meterwatch.settings import Settings; print(Settings().kafka_bootstrap)')" \
         "  Redis: $(python -c 'from meterwatch.settings import Settings; print(Settings().redis_url)')"
    svc_pid api >/dev/null && echo "  Ops API:  http://127.0.0.1:$api_port (OpenAPI at /openapi.json with a token)"
    svc_pid notifier >/dev/null && echo "  Notifier: http://127.0.0.1:$notifier_port (GET /v1/managers/{id}/inbox)"
    echo "  logs: $LOG_DIR"
    echo
    echo "The meterwatch command is in the project's venv, not on your PATH. Either:"
    echo "    source $MW_VENV/bin/activate        # then: meterwatch --help"
    echo "or use the full path:"
    echo "    $MW_VENV/bin/meterwatch --help"
    surged_id="$(head -n 1 "$RUN_DIR/surged-id" 2>/dev/null \
      || sed -n 's/^  \([^ ]*\) x[0-9.]* from .*$/\1/p' "$LOG_DIR/simulate.log" 2>/dev/null | head -n 1)"
    if svc_pid api >/dev/null && [ -s "$RUN_DIR/ops-token" ]; then
      echo
      echo "Try the Ops API (the token was created for this run; file mode 600):"
      echo "    TOKEN=\$(cat $RUN_DIR/ops-token)"
      if [ -n "$surged_id" ]; then
        echo "    # $surged_id: a household with an injected surge in this run"
        echo "    curl -s -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$api_port/v1/customers/$surged_id/alerts"
        echo "    curl -s -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$api_port/v1/customers/$surged_id/baseline"
      fi
      echo "    curl -s -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$api_port/v1/segments"
      workbench_lines
    fi
    echo
    echo "Stop everything: bash deploy/demo.sh stop"
    ;;
  status)
    meterwatch dev status || true
    for s in "${SERVICES[@]}"; do
      if pid="$(svc_pid "$s")"; then echo "$s: running (pid $pid)"; else echo "$s: not running"; fi
    done
    ;;
  down|stop)
    echo "== services"
    for s in "${SERVICES[@]}"; do stop_service "$s"; done
    echo "== stack"
    meterwatch dev down
    ;;
  *)
    echo "usage: bash deploy/demo.sh [up|status|stop]" >&2
    exit 2
    ;;
esac
