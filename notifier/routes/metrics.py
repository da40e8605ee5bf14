"""`GET /metrics`: Prometheus text through prometheus_client (token required).

Counters are cluster-wide: every replica adds to the Redis HASH ``metrics:notifier``
(inside the same scripts that change the state), and any replica exposes the sums.
Hash fields come in three shapes:

* ``{channel}_{status}`` (``sms_sent``, ``push_retry``, ...) ->
  ``meterwatch_notifier_notifications_total{channel, status}``;
* ``name{label="value"}`` (``possible_duplicates{channel="sms"}``, ...) ->
  ``meterwatch_notifier_{name}_total{label}``;
* ``name`` (``alerts_ingested``, ...) -> ``meterwatch_notifier_{name}_total``.

Gauges are this replica's view (due queue, Kafka consumer, live streams, breakers).

>>> print(render({"sms_sent": 2, "alerts_ingested": 5, 'possible_duplicates{channel="sms"}': 1},
...              {"due_queue": 1}).decode(), end="")  # doctest: +NORMALIZE_WHITESPACE
# HELP meterwatch_notifier_notifications_total Notification status transitions (all replicas).
# TYPE meterwatch_notifier_notifications_total counter
meterwatch_notifier_notifications_total{channel="sms",status="sent"} 2.0
# HELP meterwatch_notifier_alerts_ingested_total alerts_ingested (all replicas).
# TYPE meterwatch_notifier_alerts_ingested_total counter
meterwatch_notifier_alerts_ingested_total 5.0
# HELP meterwatch_notifier_possible_duplicates_total possible_duplicates (all replicas).
# TYPE meterwatch_notifier_possible_duplicates_total counter
meterwatch_notifier_possible_duplicates_total{channel="sms"} 1.0
# HELP meterwatch_notifier_due_queue due_queue (this replica's view).
# TYPE meterwatch_notifier_due_queue gauge
meterwatch_notifier_due_queue 1.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notifier.deps import Principal, StoreDep

router = APIRouter(tags=["metrics"])

PREFIX = "meterwatch_notifier_"
_CHANNEL = re.compile(r"^(landlord_sms|sms|push|digest|escalation)_([a-z_]+)$")
_LABELLED = re.compile(r'^([a-z_]+)\{([a-z_]+)="([^"{},]*)"\}$')
_PLAIN = re.compile(r"^[a-z_]+$")

#: gauge name -> value, or {channel: value}; None values are left out
Gauges = Mapping[str, float | Mapping[str, float] | None]


class _Snapshot(Collector):
    """One scrape's worth of counters (from Redis) and gauges (this replica)."""

    def __init__(self, counters: Mapping[str, float], gauges: Gauges) -> None:
        self.counters = counters
        self.gauges = gauges

    def collect(self) -> Iterable[Metric]:
        transitions = CounterMetricFamily(
            PREFIX + "notifications",
            "Notification status transitions (all replicas).",
            labels=["channel", "status"],
        )
        labelled: dict[str, tuple[str, CounterMetricFamily]] = {}
        plain: list[CounterMetricFamily] = []
        for field, value in sorted(self.counters.items()):
            if m := _CHANNEL.match(field):
                transitions.add_metric([m.group(1), m.group(2)], value)
            elif m := _LABELLED.match(field):
                name, label, lvalue = m.groups()
                first, fam = labelled.setdefault(
                    name,
                    (label, CounterMetricFamily(PREFIX + name, f"{name} (all replicas).", labels=[label])),
                )
                if first == label:  # one label name per family: keep the first shape
                    fam.add_metric([lvalue], value)
            elif _PLAIN.match(field):
                fam = CounterMetricFamily(PREFIX + field, f"{field} (all replicas).")
                fam.add_metric([], value)
                plain.append(fam)
        if transitions.samples:
            yield transitions
        yield from plain
        yield from (fam for _label, fam in labelled.values())
        yield from self._gauges()

    def _gauges(self) -> Iterable[Metric]:
        for name, value in sorted(self.gauges.items()):
            if value is None:
                continue
            doc = f"{name} (this replica's view)."
            if isinstance(value, Mapping):  # by channel
                fam = GaugeMetricFamily(PREFIX + name, doc, labels=["channel"])
                for lvalue, v in sorted(value.items()):
                    fam.add_metric([lvalue], v)
                yield fam
            else:
                g = GaugeMetricFamily(PREFIX + name, doc)
                g.add_metric([], float(value))
                yield g


def render(counters: Mapping[str, float], gauges: Gauges) -> bytes:
    """Prometheus text exposition of the notifier's counters and gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counters, gauges))
    return generate_latest(registry)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, _p: Principal, store: StoreDep) -> Response:
    st = request.app.state
    gauges: dict[str, float | Mapping[str, float] | None] = {
        "due_queue": float(await store.due_count()),
        "kafka_connected": float(st.consumer.connected) if st.consumer_enabled else None,
        "kafka_lag": None,
        "sse_streams": float(st.hub.total),
        "breaker_open": {ch: float(b.is_open) for ch, b in st.dispatcher.breakers.items()},
    }
    if st.consumer_enabled:
        try:
            lag = await st.consumer.lag()
            gauges["kafka_lag"] = float(lag) if lag is not None else None
        except Exception:  # lag is best effort; never fail the scrape for it
            gauges["kafka_lag"] = None
    body = render(await store.metrics(), gauges)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
