"""Worker metrics: in-process counters, exposed through prometheus_client, and a small HTTP server.

The hot path only does dict increments (``WorkerMetrics.inc``); prometheus_client
reads them at scrape time through a collector (``WorkerCollector``), so a
reading pays no lock or label lookup. ``GET /healthz`` answers without a token;
``GET /metrics`` needs a bearer token that ``meterwatch.auth.verify_token``
accepts. The server binds ``MW_WORKER_METRICS_HOST`` (default 127.0.0.1).

The counters are also mirrored into the Redis HASH ``Keys.metrics("worker")``
(see stream/readmodel.py) so the API's /metrics shows the whole pipeline.

>>> m = WorkerMetrics()
>>> m.inc("readings_in", 3); m.inc_labelled("dlq", "schema")
>>> m.set_gauge("consumer_lag", 5)
>>> print(render(m, "w0"))  # doctest: +NORMALIZE_WHITESPACE
# HELP meterwatch_worker_readings_in_total readings_in (this worker process)
# TYPE meterwatch_worker_readings_in_total counter
meterwatch_worker_readings_in_total{instance="w0"} 3.0
# HELP meterwatch_worker_dlq_total dlq by code (this worker process)
# TYPE meterwatch_worker_dlq_total counter
meterwatch_worker_dlq_total{code="schema",instance="w0"} 1.0
# HELP meterwatch_worker_consumer_lag consumer_lag (this worker process)
# TYPE meterwatch_worker_consumer_lag gauge
meterwatch_worker_consumer_lag{instance="w0"} 5.0
<BLANKLINE>
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from meterwatch.auth import verify_token
from meterwatch.connections import redis_client
from meterwatch.keys import Keys
from meterwatch.settings import Settings

if TYPE_CHECKING:  # aiohttp is imported by ``start`` (off the start-up path when metrics are off)
    from aiohttp import web

log = logging.getLogger(__name__)

LABEL_NAMES = {"dlq": "code", "alerts": "rule", "duplicates": "kind", "errors": "kind"}
PREFIX = "meterwatch_worker_"


class WorkerMetrics:
    """Plain in-process counters (the hot path only does dict increments)."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = defaultdict(int)
        self.labelled: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.gauges: dict[str, float] = {}
        self._flushed: dict[str, int] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def inc_labelled(self, name: str, label: str, n: int = 1) -> None:
        self.labelled[name][label] += n

    def set_gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def flat(self) -> dict[str, int]:
        """All counters as ``name`` / ``name:label`` -> value.

        >>> m = WorkerMetrics(); m.inc_labelled("alerts", "sudden_increase", 2)
        >>> m.flat()
        {'alerts:sudden_increase': 2}
        """
        out = dict(self.counters)
        for name, by in self.labelled.items():
            for label, v in by.items():
                out[f"{name}:{label}"] = v
        return out

    def deltas(self, exclude: frozenset[str] = frozenset()) -> dict[str, int]:
        """What changed since the last call (for HINCRBY into Redis), without ``exclude``.

        >>> m = WorkerMetrics(); m.inc("x", 2); m.deltas(); m.inc("x"); m.deltas()
        {'x': 2}
        {'x': 1}
        """
        now = self.flat()
        out = {
            k: v - self._flushed.get(k, 0)
            for k, v in now.items()
            if v != self._flushed.get(k, 0) and k not in exclude
        }
        self._flushed = now
        return out


class WorkerCollector(Collector):
    """prometheus_client's view of one process's :class:`WorkerMetrics` (read at scrape time)."""

    def __init__(self, metrics: WorkerMetrics, instance: str) -> None:
        self.metrics = metrics
        self.instance = instance

    def collect(self) -> Iterator[Metric]:
        m, inst = self.metrics, self.instance
        for name in sorted(m.counters):
            c = CounterMetricFamily(PREFIX + name, f"{name} (this worker process)", labels=["instance"])
            c.add_metric([inst], m.counters[name])
            yield c
        for name in sorted(m.labelled):
            label = LABEL_NAMES.get(name, "label")
            doc = f"{name} by {label} (this worker process)"
            c = CounterMetricFamily(PREFIX + name, doc, labels=[label, "instance"])
            for value, n in sorted(m.labelled[name].items()):
                c.add_metric([value, inst], n)
            yield c
        for name in sorted(m.gauges):
            g = GaugeMetricFamily(PREFIX + name, f"{name} (this worker process)", labels=["instance"])
            g.add_metric([inst], m.gauges[name])
            yield g


def registry_for(metrics: WorkerMetrics, instance: str) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the worker's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(metrics, instance))
    return registry


def render(metrics: WorkerMetrics, instance: str) -> str:
    """The Prometheus text exposition of ``metrics``."""
    return generate_latest(registry_for(metrics, instance)).decode()


class MetricsServer:
    """aiohttp server: /healthz (open) and /metrics (bearer token), on ``MW_WORKER_METRICS_HOST``."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics, instance: str, port: int) -> None:
        self.settings = settings
        self.instance = instance
        self.port = port
        self.host = settings.worker_metrics_host
        self.registry = registry_for(metrics, instance)
        self._keys = Keys(settings.redis_prefix)
        self._runner: web.AppRunner | None = None
        self._redis: Redis | None = None

    async def healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"status": "ok", "instance": self.instance})

    async def metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        unauthorized = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            return web.json_response({"detail": "missing bearer token"}, status=401, headers=unauthorized)
        assert self._redis is not None
        try:
            record = await verify_token(self._redis, self._keys, token.strip())
        except Exception:
            log.exception("token check failed")
            return web.json_response({"detail": "token store unavailable"}, status=503)
        if record is None:
            return web.json_response({"detail": "invalid or expired token"}, status=401, headers=unauthorized)
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def not_found(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"detail": "not found"}, status=404)

    async def start(self) -> None:
        from aiohttp import web

        self._redis = redis_client(self.settings)
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("worker metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._redis is not None:
            await self._redis.aclose()
