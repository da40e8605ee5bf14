"""The Redis read model: what the Ops API and the notifier read, written by the worker.

The worker marks what changed (a customer's baseline, registry record, alerts,
the segment summaries); a background loop writes it to Redis every
``settings.readmodel_flush_ms`` in pipelined, chunked batches. Baseline
snapshots are built lazily at flush time, so a customer with 50 readings in
one interval is serialised once. Redis being down never stops the stream: the
pending writes are kept (merged with newer ones) and retried on the next flush.

Keys and shapes: ``meterwatch.keys.Keys`` and docs/INTERFACES.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from stream.workbench import WorkbenchWrites

log = logging.getLogger(__name__)

ALERTS_KEPT = 200
_PIPELINE_CHUNK = 2000
_MAX_PENDING_ALERTS = 100_000

# Trim the alert ZSET to the newest N and drop the same ids from the body HASH, atomically.
_TRIM_LUA = """
local n = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[1])
if n > keep then
  local old = redis.call('ZRANGE', KEYS[1], 0, n - keep - 1)
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  return #old
end
return 0
"""

SnapshotThunk = Callable[[], bytes | None]


class ReadModelWriter:
    """Buffers read-model changes and flushes them to Redis in pipelined batches."""

    def __init__(self, redis: Redis, keys: Keys, flush_ms: int = 200, alerts_kept: int = ALERTS_KEPT) -> None:
        self.redis = redis
        self.keys = keys
        self.flush_s = max(flush_ms, 10) / 1000.0
        self.alerts_kept = alerts_kept
        self._snapshots: dict[str, SnapshotThunk] = {}
        self._customers: dict[str, bytes | None] = {}
        self._deleted_baselines: set[str] = set()
        self._alerts: list[Alert] = []
        self._segments: bytes | None = None
        self._metrics_incr: dict[str, int] = {}
        self._metrics_set: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._trim = redis.register_script(_TRIM_LUA)
        self.workbench = WorkbenchWrites(redis, keys)  # alert index, daily archive, segment members
        self.flushes = 0
        self.flush_errors = 0
        self.last_flush_s = 0.0
        self.keys_written = 0

    # --- marking (called from the agents; cheap) -------------------------------------------
    def mark_snapshot(self, customer_id: str, thunk: SnapshotThunk) -> None:
        """The customer's baseline changed; ``thunk`` builds its snapshot JSON at flush time."""
        self._snapshots[customer_id] = thunk
        self._deleted_baselines.discard(customer_id)

    def put_customer(self, customer_id: str, record_json: bytes | None) -> None:
        """The registry copy of a customer (``None``: deleted, with its baseline)."""
        self._customers[customer_id] = record_json
        if record_json is None:
            self._snapshots.pop(customer_id, None)
            self._deleted_baselines.add(customer_id)

    def add_alert(self, alert: Alert) -> None:
        if len(self._alerts) < _MAX_PENDING_ALERTS:
            self._alerts.append(alert)
        else:  # pragma: no cover - only when Redis is down for very long
            log.error("read model: alert buffer full, alert %s not mirrored to Redis", alert.alert_id)

    def set_segments(self, summaries_json: bytes) -> None:
        self._segments = summaries_json

    def incr_metrics(self, deltas: dict[str, int]) -> None:
        for k, v in deltas.items():
            if v:
                self._metrics_incr[k] = self._metrics_incr.get(k, 0) + v

    def set_metrics(self, values: dict[str, float]) -> None:
        self._metrics_set.update(values)

    @property
    def pending(self) -> int:
        return len(self._snapshots) + len(self._customers) + len(self._alerts)

    # --- flushing --------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write everything pending; returns the number of commands sent."""
        snapshots, self._snapshots = self._snapshots, {}
        customers, self._customers = self._customers, {}
        deleted, self._deleted_baselines = self._deleted_baselines, set()
        alerts, self._alerts = self._alerts, []
        segments, self._segments = self._segments, None
        incr, self._metrics_incr = self._metrics_incr, {}
        mset, self._metrics_set = self._metrics_set, {}
        wb = self.workbench.take()
        k = self.keys
        sent = 0
        try:
            pipe = self.redis.pipeline(transaction=False)
            n = 0

            async def maybe_execute(force: bool = False) -> None:
                nonlocal pipe, n, sent
                if n and (force or n >= _PIPELINE_CHUNK):
                    await pipe.execute()
                    sent += n
                    n = 0
                    pipe = self.redis.pipeline(transaction=False)

            for cid, rec in customers.items():
                if rec is None:
                    pipe.delete(k.customer(cid))
                else:
                    pipe.set(k.customer(cid), rec)
                n += 1
                await maybe_execute()
            for cid in deleted:
                pipe.delete(k.baseline(cid))
                n += 1
                await maybe_execute()
            for cid, thunk in snapshots.items():
                try:
                    body = thunk()
                except Exception:  # a bad snapshot must not stop the others
                    log.exception("read model: snapshot of %s failed", cid)
                    continue
                if body is not None:
                    pipe.set(k.baseline(cid), body)
                    n += 1
                    await maybe_execute()
            trim: set[str] = set()
            for a in alerts:
                pipe.zadd(k.alerts(a.customer_id), {a.alert_id: a.triggered_by.timestamp()})
                pipe.hset(k.alert_bodies(a.customer_id), a.alert_id, a.to_json())
                await self.workbench.queue_alert(pipe, a)  # the index across customers, same pipeline
                n += 3
                trim.add(a.customer_id)
                await maybe_execute()
            for cid in trim:
                await self._trim(
                    keys=[k.alerts(cid), k.alert_bodies(cid)], args=[self.alerts_kept], client=pipe
                )
                n += 1
                await maybe_execute()

            async def wb_step(count: int) -> Pipeline:
                nonlocal n
                n += count
                await maybe_execute()
                return pipe

            await self.workbench.queue(pipe, wb, wb_step)
            if segments is not None:
                pipe.set(k.segments, segments)
                n += 1
            if incr or mset:
                mk = k.metrics("worker")
                for name, delta in incr.items():
                    pipe.hincrby(mk, name, delta)
                if mset:
                    pipe.hset(mk, mapping={name: str(v) for name, v in mset.items()})
                n += len(incr) + (1 if mset else 0)
            pipe.set(k.heartbeat, f"{time.time():.3f}")
            n += 1
            await maybe_execute(force=True)
        except Exception as exc:
            self.flush_errors += 1
            log.warning("read model flush failed (%s); will retry", exc)
            self._restore(snapshots, customers, deleted, alerts, segments, incr, mset)
            self.workbench.restore(wb)
            return sent
        self.flushes += 1
        self.keys_written += sent
        return sent

    def _restore(
        self,
        snapshots: dict[str, SnapshotThunk],
        customers: dict[str, bytes | None],
        deleted: set[str],
        alerts: list[Alert],
        segments: bytes | None,
        incr: dict[str, int],
        mset: dict[str, float],
    ) -> None:
        # Newer marks win over the ones being restored.
        for cid, t in snapshots.items():
            self._snapshots.setdefault(cid, t)
        for cid, r in customers.items():
            self._customers.setdefault(cid, r)
        self._deleted_baselines |= deleted - set(self._snapshots)
        self._alerts[:0] = alerts[: _MAX_PENDING_ALERTS - len(self._alerts)]
        if self._segments is None:
            self._segments = segments
        self.incr_metrics(incr)
        for name, v in mset.items():
            self._metrics_set.setdefault(name, v)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await self.flush()
            self.last_flush_s = time.perf_counter() - started
            await asyncio.sleep(max(self.flush_s - self.last_flush_s, 0.005))

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="meterwatch-readmodel")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
