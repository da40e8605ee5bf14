"""The Redis read model: what the Ops API and the notifier read, written by the worker.

The worker marks what changed (a customer's stored state, registry record,
alerts, the segment summaries); a background loop writes it to Redis every
``settings.readmodel_flush_ms`` in pipelined, chunked batches. A customer's
state is the value the worker stores in RocksDB (``stream/state.py``), written
as it is (the newest of the interval): the baseline snapshot is built by its
readers (``baselines.readview``), not here. Redis being down never stops the
stream: the pending writes are kept (merged with newer ones) and retried on the
next flush.

Keys and shapes: ``meterwatch.keys.Keys`` and docs/INTERFACES.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from stream.workbench import WorkbenchWrites

log = logging.getLogger(__name__)

ALERTS_KEPT = 200
_PIPELINE_CHUNK = 2000
_MSET_KEYS = 500  # keys per MSET command
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

# Exact pipeline counters: each partition's absolute value is stored under "<name>|<partition>"
# in KEYS[1]; the metrics hash KEYS[2] gets their sum, so a restarted or rebalanced worker that
# publishes the recovered value replaces (never adds to) what the crashed one published.
_PARTS_LUA = """
local nparts = tonumber(ARGV[1])
local touched = {}
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i] .. '|' .. ARGV[i + 1], ARGV[i + 2])
  touched[ARGV[i]] = true
end
for name, _ in pairs(touched) do
  local total = 0
  for p = 0, nparts - 1 do
    total = total + (tonumber(redis.call('HGET', KEYS[1], name .. '|' .. p)) or 0)
  end
  redis.call('HSET', KEYS[2], name, total)
end
return 0
"""


@dataclass
class _Taken:
    """What one flush writes (put back by ``_restore`` when Redis fails)."""

    states: dict[str, bytes]
    customers: dict[str, bytes | None]
    deleted: set[str]
    alerts: list[Alert]
    segments: bytes | None
    incr: dict[str, int]
    mset: dict[str, float]
    parts: dict[tuple[str, int], int]


class _Chunked:
    """A non-transactional pipeline executed every ``_PIPELINE_CHUNK`` commands."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pipe = redis.pipeline(transaction=False)
        self.n = 0
        self.sent = 0

    async def added(self, n: int = 1) -> None:
        self.n += n
        if self.n >= _PIPELINE_CHUNK:
            await self.execute()

    async def execute(self) -> None:
        if self.n:
            await self.pipe.execute()
            self.sent += self.n
            self.n = 0
            self.pipe = self.redis.pipeline(transaction=False)


class ReadModelWriter:
    """Buffers read-model changes and flushes them to Redis in pipelined batches."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        flush_ms: int = 200,
        alerts_kept: int = ALERTS_KEPT,
        partitions: int = 1,
    ) -> None:
        self.redis = redis
        self.partitions = partitions  # of the by-customer topic (exact counters are per partition)
        self.keys = keys
        self.flush_s = max(flush_ms, 10) / 1000.0
        self.alerts_kept = alerts_kept
        self._states: dict[str, bytes] = {}
        self._customers: dict[str, bytes | None] = {}
        self._deleted_baselines: set[str] = set()
        self._alerts: list[Alert] = []
        self._segments: bytes | None = None
        self._metrics_incr: dict[str, int] = {}
        self._metrics_set: dict[str, float] = {}
        self._parts: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._trim = redis.register_script(_TRIM_LUA)
        self._set_parts = redis.register_script(_PARTS_LUA)
        self.workbench = WorkbenchWrites(redis, keys)  # alert index, daily archive, segment members
        self.flushes = 0
        self.flush_errors = 0
        self.last_flush_s = 0.0
        self.keys_written = 0

    # --- marking (called from the agents; cheap) -------------------------------------------
    def put_state(self, customer_id: str, state: bytes) -> None:
        """The customer's stored state changed (``stream.state.encode_customer``; the newest wins)."""
        self._states[customer_id] = state
        self._deleted_baselines.discard(customer_id)

    def put_customer(self, customer_id: str, record_json: bytes | None) -> None:
        """The registry copy of a customer (``None``: deleted, with its state and baseline)."""
        self._customers[customer_id] = record_json
        if record_json is None:
            self._states.pop(customer_id, None)
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

    def set_partition_counters(self, partition: int, values: dict[str, int]) -> None:
        """Exact counters of one by-customer partition (absolute values; the hash gets their sum)."""
        for name, v in values.items():
            self._parts[(name, partition)] = v

    @property
    def pending(self) -> int:
        return len(self._states) + len(self._customers) + len(self._alerts)

    # --- flushing --------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write everything pending; returns the number of keys and commands sent."""
        t = self._take()
        wb = self.workbench.take()
        out = _Chunked(self.redis)

        async def step(n: int) -> Pipeline:
            await out.added(n)
            return out.pipe

        try:
            await self._write_registry(out, t)
            await self._write_states(out, t)
            await self._write_alerts(out, t)
            await self.workbench.queue(out.pipe, wb, step)
            await self._write_metrics(out, t)
            out.pipe.set(self.keys.heartbeat, f"{time.time():.3f}")
            await out.added()
            await out.execute()
        except Exception as exc:
            self.flush_errors += 1
            log.warning("read model flush failed (%s); will retry", exc)
            self._restore(t)
            self.workbench.restore(wb)
            return out.sent
        self.flushes += 1
        self.keys_written += out.sent
        return out.sent

    def _take(self) -> _Taken:
        t = _Taken(
            self._states,
            self._customers,
            self._deleted_baselines,
            self._alerts,
            self._segments,
            self._metrics_incr,
            self._metrics_set,
            self._parts,
        )
        self._states, self._customers, self._deleted_baselines, self._alerts = {}, {}, set(), []
        self._segments, self._metrics_incr, self._metrics_set, self._parts = None, {}, {}, {}
        return t

    async def _write_registry(self, out: _Chunked, t: _Taken) -> None:
        k = self.keys
        records = {k.customer(cid): rec for cid, rec in t.customers.items() if rec is not None}
        gone = [k.customer(cid) for cid, rec in t.customers.items() if rec is None]
        gone += [k.state(cid) for cid in t.deleted]
        gone += [k.baseline(cid) for cid in t.deleted]  # written by a worker of an earlier version
        for i in range(0, len(gone), _MSET_KEYS):
            part = gone[i : i + _MSET_KEYS]
            out.pipe.delete(*part)
            await out.added(len(part))
        await self._mset(out, records)

    async def _mset(self, out: _Chunked, values: dict[str, bytes]) -> None:
        """SET of many keys as MSET commands of ``_MSET_KEYS`` each (redis-py's cost is per
        command: 30 us of CPU per key with one SET each, 5 us in MSETs of 500, measured)."""
        batch: dict[str, bytes] = {}
        for key, value in values.items():
            batch[key] = value
            if len(batch) >= _MSET_KEYS:
                out.pipe.mset(batch)
                await out.added(len(batch))
                batch = {}
        if batch:
            out.pipe.mset(batch)
            await out.added(len(batch))

    async def _write_states(self, out: _Chunked, t: _Taken) -> None:
        k = self.keys
        await self._mset(out, {k.state(cid): body for cid, body in t.states.items()})
        # the snapshot an earlier worker wrote goes with the first state: where both exist, the
        # API takes the snapshot for the newer (written after the state: a rollback)
        stale = [k.baseline(cid) for cid in t.states]
        for i in range(0, len(stale), _MSET_KEYS):
            out.pipe.unlink(*stale[i : i + _MSET_KEYS])
            await out.added()
        if t.segments is not None:
            out.pipe.set(self.keys.segments, t.segments)
            await out.added()

    async def _write_alerts(self, out: _Chunked, t: _Taken) -> None:
        k = self.keys
        trim: set[str] = set()
        for a in t.alerts:
            out.pipe.zadd(k.alerts(a.customer_id), {a.alert_id: a.triggered_by.timestamp()})
            out.pipe.hset(k.alert_bodies(a.customer_id), a.alert_id, a.to_json())
            await self.workbench.queue_alert(out.pipe, a)  # the index across customers, same pipeline
            trim.add(a.customer_id)
            await out.added(3)
        for cid in trim:
            await self._trim(
                keys=[k.alerts(cid), k.alert_bodies(cid)], args=[self.alerts_kept], client=out.pipe
            )
            await out.added()

    async def _write_metrics(self, out: _Chunked, t: _Taken) -> None:
        mk = self.keys.metrics("worker")
        for name, delta in t.incr.items():
            out.pipe.hincrby(mk, name, delta)
        if t.mset:
            out.pipe.hset(mk, mapping={name: str(v) for name, v in t.mset.items()})
        await out.added(len(t.incr) + (1 if t.mset else 0))
        if t.parts:
            args: list[str | int] = [self.partitions]
            for (name, p), v in t.parts.items():
                args += [name, p, v]
            await self._set_parts(
                keys=[self.keys.metrics("worker:partitions"), mk], args=args, client=out.pipe
            )
            await out.added()

    def _restore(self, t: _Taken) -> None:
        # Newer marks win over the ones being restored.
        for cid, body in t.states.items():
            if cid not in self._deleted_baselines:  # deleted since the take: the delete wins
                self._states.setdefault(cid, body)
        for cid, r in t.customers.items():
            self._customers.setdefault(cid, r)
        self._deleted_baselines |= t.deleted - set(self._states)
        self._alerts[:0] = t.alerts[: _MAX_PENDING_ALERTS - len(self._alerts)]
        if self._segments is None:
            self._segments = t.segments
        self.incr_metrics(t.incr)
        for name, v in t.mset.items():
            self._metrics_set.setdefault(name, v)
        for key, n in t.parts.items():
            self._parts.setdefault(key, n)

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
