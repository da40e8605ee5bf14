"""`GET /metrics`: Prometheus text (token required). Counters are cluster-wide (Redis HASH)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from notifier.deps import Principal, StoreDep

router = APIRouter(tags=["metrics"])

_CHANNEL = re.compile(r"^(sms|push|digest|escalation)_([a-z_]+)$")


def render(counters: dict[str, int], gauges: dict[str, float | None]) -> str:
    """Prometheus text exposition of the notifier's counters and gauges.

    >>> print(render({"sms_sent": 2, "alerts_ingested": 5}, {"due_queue": 1}), end="")
    # HELP meterwatch_notifier_notifications_total Notification status transitions (all replicas).
    # TYPE meterwatch_notifier_notifications_total counter
    meterwatch_notifier_notifications_total{channel="sms",status="sent"} 2
    # HELP meterwatch_notifier_alerts_ingested_total alerts_ingested (all replicas).
    # TYPE meterwatch_notifier_alerts_ingested_total counter
    meterwatch_notifier_alerts_ingested_total 5
    # HELP meterwatch_notifier_due_queue due_queue (this replica's view).
    # TYPE meterwatch_notifier_due_queue gauge
    meterwatch_notifier_due_queue 1
    """
    lines: list[str] = []
    chan = sorted((m.group(1), m.group(2), v) for k, v in counters.items() if (m := _CHANNEL.match(k)))
    if chan:
        name = "meterwatch_notifier_notifications_total"
        lines += [
            f"# HELP {name} Notification status transitions (all replicas).",
            f"# TYPE {name} counter",
        ]
        lines += [f'{name}{{channel="{c}",status="{s}"}} {v}' for c, s, v in chan]
    for k in sorted(k for k in counters if not _CHANNEL.match(k)):
        if not re.fullmatch(r"[a-z_]+", k):
            continue
        name = f"meterwatch_notifier_{k}_total"
        lines += [f"# HELP {name} {k} (all replicas).", f"# TYPE {name} counter", f"{name} {counters[k]}"]
    for k, v in sorted(gauges.items()):
        if v is None:
            continue
        name = f"meterwatch_notifier_{k}"
        lines += [f"# HELP {name} {k} (this replica's view).", f"# TYPE {name} gauge", f"{name} {v:g}"]
    return "\n".join(lines) + "\n"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, _p: Principal, store: StoreDep) -> PlainTextResponse:
    st = request.app.state
    gauges: dict[str, float | None] = {
        "due_queue": float(await store.due_count()),
        "kafka_connected": float(st.consumer.connected) if st.consumer_enabled else None,
        "kafka_lag": None,
    }
    if st.consumer_enabled:
        try:
            lag = await st.consumer.lag()
            gauges["kafka_lag"] = float(lag) if lag is not None else None
        except Exception:  # lag is best effort; never fail the scrape for it
            gauges["kafka_lag"] = None
    return PlainTextResponse(render(await store.metrics(), gauges), media_type="text/plain; version=0.0.4")
