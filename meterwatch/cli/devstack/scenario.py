"""Cluster scenarios (tests/integration/cluster, bench/bench_cluster.py): households, a paced feed, probes.

Households are synthetic (half-hourly readings, +-15 % day-to-day noise); a *surge*
household uses 5 times its level from its surge day on, which the `sudden_increase` rule
must report exactly once (its surge stays inside one billing cycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from api.snapshots import Snapshots
from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from meterwatch.settings import Settings

SLOTS = 48


@dataclass(frozen=True)
class Household:
    customer_id: str
    meter_id: str
    surge_from: int | None = None  # the first day at 5x the usual level

    def customer(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "meter_ids": [self.meter_id], "name": self.customer_id,
                "phone": "+447700900123", "manager_id": "mgr-1", "read_day": 1, "timezone": "UTC",
                "language": "en", "sms_opt_in": True}  # fmt: skip

    def day(self, t0: dt.datetime, day: int) -> list[dict[str, Any]]:
        rnd = random.Random(f"{self.customer_id}/{day}")  # noqa: S311 - synthetic data
        surge = self.surge_from is not None and day >= self.surge_from
        level = 8.0 * (1 + 0.15 * rnd.uniform(-1, 1)) * (5.0 if surge else 1.0)
        return [
            {"meter_id": self.meter_id, "ts": (t0 + dt.timedelta(days=day, minutes=30 * (i + 1))).isoformat(),
             "kwh": round(level / SLOTS, 5)}
            for i in range(SLOTS)
        ]  # fmt: skip


class Feed:
    """Publishes whole days of readings of every household (acks=all, idempotent producer)."""

    def __init__(self, s: Settings, homes: list[Household], t0: dt.datetime) -> None:
        self.s, self.homes, self.t0 = s, homes, t0
        self.sent = 0  # readings acknowledged by the cluster
        self.producing = -1  # the day being published
        self.producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            **kafka_client_kwargs(self.s), acks="all", enable_idempotence=True, linger_ms=10
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, topic: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        futs = [
            await self.producer.send(topic, key=k.encode(), value=json.dumps(v).encode()) for k, v in items
        ]
        await asyncio.gather(*futs)

    async def customers(self) -> None:
        await self.send(self.s.topic_customers, [(h.customer_id, h.customer()) for h in self.homes])

    async def days(self, first: int, last: int, pace_s: float = 0.0) -> None:
        """Days ``first..last``, one day of every household every ``pace_s`` seconds (0: at once)."""
        for day in range(first, last + 1):
            t = time.monotonic()
            self.producing = day
            batch = [(r["meter_id"], r) for h in self.homes for r in h.day(self.t0, day)]
            await self.send(self.s.topic_readings, batch)
            self.sent += len(batch)
            await asyncio.sleep(max(0.0, pace_s - (time.monotonic() - t)))


class Probe:
    """What the workers published in Redis (through the Sentinel client: follows a failover)."""

    def __init__(self, s: Settings, redis: Any) -> None:
        self.s, self.redis, self.keys = s, redis, Keys(s.redis_prefix)
        self.snapshots = Snapshots.for_settings(s)  # as the Ops API builds them

    async def processed(self) -> int:
        return int(await self.redis.hget(self.keys.metrics("worker"), "readings_processed") or 0)

    async def as_of(self, homes: list[Household]) -> dict[str, str]:
        """Each household's baseline ``as_of`` ('' when it has none yet)."""
        pipe = self.redis.pipeline(transaction=False)
        for h in homes:
            for name in self.snapshots.names(h.customer_id):
                pipe.get(name)
        raw = await pipe.execute()
        views = [self.snapshots.view(*raw[i : i + 3]) for i in range(0, len(raw), 3)]
        return {h.customer_id: json.loads(v)["as_of"] if v else "" for h, v in zip(homes, views, strict=True)}

    async def alert_index(self, homes: list[Household]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for h in homes:
            pipe.zcard(self.keys.alerts(h.customer_id))
        return {h.customer_id: int(n) for h, n in zip(homes, await pipe.execute(), strict=True)}


async def wait_for(check: Callable[[], Awaitable[Any]], timeout_s: float, what: str) -> float:
    """Poll ``check`` (errors count as "not yet", e.g. during a failover) until it is truthy;
    the seconds it took. A liveness bound, not a performance assertion."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout_s:
        try:
            last = await check()
        except AssertionError:  # a dead worker, a failed check: at once, not after the timeout
            raise
        except Exception as exc:  # Redis failing over, a broker gone: retry
            last = exc
        if last and not isinstance(last, Exception):
            return time.monotonic() - t0
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last={last!r}")


async def read_alerts(s: Settings) -> list[Alert]:
    """Every alert on the alerts topic, read to its end offsets."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka_client_kwargs(s), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(s.topic_alerts, p) for p in range(s.alerts_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[Alert] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all([await consumer.position(tp) >= end[tp] for tp in parts]):
                break
            batches = await consumer.getmany(*parts, timeout_ms=500)
            out += [Alert.model_validate_json(r.value) for recs in batches.values() for r in recs]
        return out
    finally:
        await consumer.stop()


async def group_members(s: Settings) -> int:
    """How many members the worker group has, once it is stable (0 while it rebalances)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(s), request_timeout_ms=5000)
    await admin.start()
    try:
        (resp,) = await admin.describe_consumer_groups([s.app_id])
        _err, _gid, state, _ptype, _proto, members, *_ = resp.groups[0]
        return len(members) if state == "Stable" else 0
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def as_of_times(values: dict[str, str], t0: dt.datetime) -> list[dt.datetime]:
    """The ``as_of`` values as datetimes (``t0`` for a household without a baseline yet)."""
    return [dt.datetime.fromisoformat(v) if v else t0 for v in values.values()]


async def fault_phase(
    feed: Feed,
    probe: Probe,
    days: tuple[int, int],
    fault: Callable[[], None],
    alive: Callable[[], None],
    *,
    pace_s: float = 1.2,
    fault_after_s: float = 2.5,
    timeout_s: float = 30.0,
) -> float:
    """Stream ``days`` (paced), call ``fault`` ``fault_after_s`` in; the seconds from the fault
    until every household's baseline holds a reading published after it (the consumers of
    every partition resumed, end to end). ``alive`` raises when a worker died unexpectedly.
    Waits at most ``timeout_s`` (AssertionError), then for the rest of the days to be sent."""
    task = asyncio.create_task(feed.days(days[0], days[1], pace_s=pace_s))
    try:
        await asyncio.sleep(fault_after_s)
        after = feed.t0 + dt.timedelta(days=feed.producing + 1)  # its readings all follow the fault
        t_fault = time.monotonic()
        fault()

        async def resumed() -> bool:
            alive()
            return all(a > after for a in as_of_times(await probe.as_of(feed.homes), feed.t0))

        await wait_for(resumed, timeout_s, f"every household past {after:%Y-%m-%d} after the fault")
        took = time.monotonic() - t_fault
        await task
        return took
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
