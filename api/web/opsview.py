"""The operations page's figures, from the counters the worker and the notifier publish to Redis.

The same hashes ``GET /metrics`` re-exposes (``Keys.metrics("worker")``,
``Keys.metrics("notifier")``): consumer lag per worker, dead letters by reason,
alerts per 100 customers by rule (customers: the sum of the segment sizes, i.e.
customers with a baseline), SMS outcomes, and the read model's age.

>>> per_hundred(7, 350)
2.0
>>> per_hundred(3, 0) is None
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from api.deps import Caller
from api.metrics import decode_counters, parse_field


def per_hundred(count: float, customers: int) -> float | None:
    return round(100.0 * count / customers, 1) if customers > 0 else None


@dataclass
class OpsView:
    lag: list[tuple[str, float]] = field(default_factory=list)
    internal_lag: list[tuple[str, float]] = field(default_factory=list)
    dlq: list[tuple[str, float]] = field(default_factory=list)
    alerts: list[tuple[str, float, float | None]] = field(default_factory=list)
    sms: list[tuple[str, float]] = field(default_factory=list)
    readings: float = 0.0
    customers: int = 0
    heartbeat_age_s: float | None = None


async def load_ops(caller: Caller) -> OpsView:
    keys = caller.rt.keys
    worker, notifier, segs, beat = await caller.read(
        lambda p: (
            p.hgetall(keys.metrics("worker")),
            p.hgetall(keys.metrics("notifier")),
            p.get(keys.segments),
            p.get(keys.heartbeat),
        )
    )
    w, n = decode_counters(worker or {}), decode_counters(notifier or {})
    v = OpsView()
    sizes = orjson.loads(segs) if segs else []
    v.customers = sum(int(s.get("size", 0)) for s in sizes if isinstance(s, dict))
    for name, value in sorted(w.items()):
        base, labels = parse_field(name)
        label = next(iter(labels.values()), "")
        if base == "consumer_lag":
            v.lag.append((label or "-", value))
        elif base == "internal_lag":
            v.internal_lag.append((label or "-", value))
        elif base == "dlq":
            v.dlq.append((label, value))
        elif base == "alerts":
            v.alerts.append((label, value, per_hundred(value, v.customers)))
        elif base == "readings_processed":
            v.readings = value
    for name, value in sorted(n.items()):
        base, labels = parse_field(name)
        if base.startswith("sms_") or base.startswith("push_"):
            v.sms.append((name, value))
    if beat is not None:
        try:
            v.heartbeat_age_s = round(max(0.0, time.time() - float(beat)), 1)
        except ValueError:
            v.heartbeat_age_s = None
    return v
