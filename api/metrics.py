"""Prometheus metrics of the Ops API, and re-exposure of the pipeline's counters.

The API counts its own requests (by method, route template and status) and
their latency in a registry of its own (one per app, so tests can build many
apps). The worker and the notifier publish their key counters to Redis hashes
(``Keys.metrics("worker")``, ``Keys.metrics("notifier")``); ``GET /metrics``
re-exposes them as ``meterwatch_pipeline_*`` with a ``service`` label, so one
scrape of the API shows the whole pipeline (each service also serves its own
``/metrics``). Hash fields are read in three shapes: ``name``, ``name:value``
(the worker's labelled counters, e.g. ``dlq:schema``, ``alerts:sudden_increase``)
and ``name{label="value"}``. Names that denote levels (``*lag*``, ``cached_*``,
``*_customers``) are gauges; everything else is a counter (``_total``).

>>> parse_field("readings_in")
('readings_in', {})
>>> parse_field("alerts:sudden_increase")
('alerts', {'rule': 'sudden_increase'})
>>> parse_field("consumer_lag:w0")
('consumer_lag', {'instance': 'w0'})
>>> parse_field('sms_total{status="sent"}')
('sms_total', {'status': 'sent'})
>>> parse_field("odd name!")
('odd_name', {})
>>> is_gauge("consumer_lag"), is_gauge("sms_sent")
(True, False)
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PIPELINE_PREFIX = "meterwatch_pipeline_"

#: label name of the worker's ``name:value`` fields, by name
COLON_LABELS = {
    "dlq": "code",
    "alerts": "rule",
    "duplicates": "kind",
    "consumer_lag": "instance",
    "internal_lag": "instance",
}
_GAUGE = re.compile(r"lag|^cached_|_customers$|_pending$|^pending_|_size$|_seconds$")

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"?([^",}]*)"?\s*')


def parse_field(field: str) -> tuple[str, dict[str, str]]:
    """Split a Redis metrics-hash field into a Prometheus-safe name and labels."""
    name, labels = field, {}
    if field.endswith("}") and "{" in field:
        name, _, rest = field[:-1].partition("{")
        for part in rest.split(","):
            m = _LABEL.fullmatch(part)
            if m and m.group(1) != "service":
                labels[m.group(1)] = m.group(2)
    elif ":" in field:
        name, _, value = field.partition(":")
        labels[COLON_LABELS.get(name.strip(), "label")] = value
    name = _NAME_BAD.sub("_", name.strip()).strip("_") or "unnamed"
    if name[0].isdigit():
        name = "_" + name
    return name, labels


def is_gauge(name: str) -> bool:
    """Whether a pipeline metric is a level (gauge) rather than a running count."""
    return bool(_GAUGE.search(name))


class _Snapshot(Collector):
    """A one-shot collector over counters read from Redis."""

    def __init__(self, by_service: Mapping[str, Mapping[str, float]]) -> None:
        self.by_service = by_service

    def collect(self) -> Iterable[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        label_names: dict[str, list[str]] = {}
        for service, fields in sorted(self.by_service.items()):
            for field, value in sorted(fields.items()):
                name, labels = parse_field(field)
                gauge = is_gauge(name)
                base = PIPELINE_PREFIX + name.removesuffix("_total")
                names = ["service", *sorted(labels)]
                fam = families.get(base)
                if fam is None:
                    doc = f"{name} as published by the pipeline's services in Redis"
                    fam = (
                        GaugeMetricFamily(base, doc, labels=names)
                        if gauge
                        else CounterMetricFamily(base, doc, labels=names)
                    )
                    families[base] = fam
                    label_names[base] = names
                if label_names[base] != names:
                    continue  # inconsistent label sets for one name: keep the first shape
                fam.add_metric([service, *(labels[k] for k in sorted(labels))], value)
        yield from families.values()


def decode_counters(raw: Mapping[bytes | str, bytes | str]) -> dict[str, float]:
    """Decode a Redis metrics hash, dropping values that are not finite numbers."""
    out: dict[str, float] = {}
    for k, v in raw.items():
        key = k.decode(errors="replace") if isinstance(k, bytes) else k
        try:
            num = float(v)
        except ValueError:
            continue
        if math.isfinite(num):
            out[key] = num
    return out


class ApiMetrics:
    """The API's own request counters and latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "meterwatch_api_requests",
            "HTTP requests answered by the Ops API.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "meterwatch_api_request_duration_seconds",
            "Time to answer an HTTP request, in seconds.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._req_children: dict[tuple[str, str, int], Counter] = {}
        self._lat_children: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        c = self._req_children.get(key)
        if c is None:
            c = self._req_children[key] = self.requests.labels(method, route, str(status))
        c.inc()
        lkey = (method, route)
        h = self._lat_children.get(lkey)
        if h is None:
            h = self._lat_children[lkey] = self.latency.labels(method, route)
        h.observe(seconds)

    def render(self, pipeline: Mapping[str, Mapping[str, float]]) -> bytes:
        """Prometheus text: this API's metrics, then the pipeline's counters."""
        extra = CollectorRegistry(auto_describe=False)
        extra.register(_Snapshot(pipeline))
        return generate_latest(self.registry) + generate_latest(extra)


class MetricsMiddleware:
    """Pure ASGI middleware: one counter increment and one histogram observation per request.

    Routes are labelled by their template (``/v1/customers/{customer_id}/baseline``),
    never by the concrete path, so customer ids do not explode the label space.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - start)
