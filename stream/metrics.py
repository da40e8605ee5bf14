"""Worker metrics: counters, the Prometheus text format, and a small authenticated HTTP server.

``GET /healthz`` answers without a token; ``GET /metrics`` needs a bearer token
that ``meterwatch.auth.verify_token`` accepts (role ops or manager). The same
counters are mirrored into the Redis HASH ``Keys.metrics("worker")`` (summed
over all worker processes with HINCRBY) so the API's /metrics can show them.

>>> m = WorkerMetrics()
>>> m.inc("readings_in", 3); m.inc_labelled("dlq", "schema")
>>> m.set_gauge("consumer_lag", 5)
>>> print(m.render("w0"))  # doctest: +NORMALIZE_WHITESPACE
# TYPE meterwatch_worker_readings_in_total counter
meterwatch_worker_readings_in_total{instance="w0"} 3
# TYPE meterwatch_worker_dlq_total counter
meterwatch_worker_dlq_total{instance="w0",code="schema"} 1
# TYPE meterwatch_worker_consumer_lag gauge
meterwatch_worker_consumer_lag{instance="w0"} 5
<BLANKLINE>
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from meterwatch.settings import Settings

log = logging.getLogger(__name__)

_LABEL_NAMES = {"dlq": "code", "alerts": "rule", "duplicates": "kind"}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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

    def deltas(self) -> dict[str, int]:
        """What changed since the last call (for HINCRBY into Redis).

        >>> m = WorkerMetrics(); m.inc("x", 2); m.deltas(); m.inc("x"); m.deltas()
        {'x': 2}
        {'x': 1}
        """
        now = self.flat()
        out = {k: v - self._flushed.get(k, 0) for k, v in now.items() if v != self._flushed.get(k, 0)}
        self._flushed = now
        return out

    def render(self, instance: str) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        inst = f'instance="{_esc(instance)}"'
        lines: list[str] = []
        for name in sorted(self.counters):
            lines.append(f"# TYPE meterwatch_worker_{name}_total counter")
            lines.append(f"meterwatch_worker_{name}_total{{{inst}}} {self.counters[name]}")
        for name in sorted(self.labelled):
            label = _LABEL_NAMES.get(name, "label")
            lines.append(f"# TYPE meterwatch_worker_{name}_total counter")
            for lv, v in sorted(self.labelled[name].items()):
                lines.append(f'meterwatch_worker_{name}_total{{{inst},{label}="{_esc(lv)}"}} {v}')
        for name in sorted(self.gauges):
            lines.append(f"# TYPE meterwatch_worker_{name} gauge")
            g = self.gauges[name]
            lines.append(f"meterwatch_worker_{name}{{{inst}}} {int(g) if float(g).is_integer() else g}")
        return "\n".join(lines) + "\n"


class MetricsServer:
    """aiohttp server on 127.0.0.1: /healthz (open) and /metrics (bearer token)."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics, instance: str, port: int) -> None:
        self.settings = settings
        self.metrics = metrics
        self.instance = instance
        self.port = port
        self._runner: Any = None
        self._redis: Any = None

    async def start(self) -> None:
        from aiohttp import web
        from redis.asyncio import Redis

        from meterwatch.auth import verify_token
        from meterwatch.keys import Keys

        self._redis = Redis.from_url(self.settings.redis_url)
        keys = Keys(self.settings.redis_prefix)

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok", "instance": self.instance})

        async def metrics(request: web.Request) -> web.Response:
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return web.json_response(
                    {"detail": "missing bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
                )
            try:
                record = await verify_token(self._redis, keys, token.strip())
            except Exception:
                log.exception("token check failed")
                return web.json_response({"detail": "token store unavailable"}, status=503)
            if record is None:
                return web.json_response(
                    {"detail": "invalid or expired token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
                )
            return web.Response(text=self.metrics.render(self.instance), content_type="text/plain")

        async def not_found(request: web.Request) -> web.Response:
            return web.json_response({"detail": "not found"}, status=404)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        app.router.add_route("*", "/{tail:.*}", not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        log.info("worker metrics on http://127.0.0.1:%d/metrics", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._redis is not None:
            await self._redis.aclose()
