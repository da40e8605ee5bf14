"""Sending to Kafka: one idempotent producer, pacing, and what a publishing command reports."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meterwatch.cli.options import progress_enabled
from meterwatch.cli.publish.readers import Rejected
from meterwatch.settings import Settings


@dataclass
class PublishStats:
    sent: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class Publisher:
    """One idempotent aiokafka producer (acks=all), batched, optionally paced.

    Use as ``async with Publisher(settings) as pub: await pub.send(topic, key, value)``.
    """

    def __init__(self, settings: Settings, linger_ms: int = 20, max_in_flight: int = 20000) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self.max_in_flight = max_in_flight
        self.stats = PublishStats()
        self._pending: list[asyncio.Future[Any]] = []
        self._producer: Any = None
        self._t0 = 0.0

    async def __aenter__(self) -> Publisher:
        from aiokafka import AIOKafkaProducer

        from meterwatch.connections import kafka_client_kwargs

        self._producer = AIOKafkaProducer(
            **kafka_client_kwargs(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            max_batch_size=512 * 1024,
            compression_type=None,
            client_id="meterwatch-publisher",
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        self._t0 = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                await self.flush()
        finally:
            await self._producer.stop()
            self.stats.seconds = time.perf_counter() - self._t0

    async def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        fut = await self._producer.send(topic, value=value, key=key)
        self._pending.append(fut)
        self.stats.sent[topic] = self.stats.sent.get(topic, 0) + 1
        if len(self._pending) >= self.max_in_flight:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every message sent so far is acknowledged (raises the first error)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class Pacer:
    """Sleep so that ``n`` events take at least ``n / rate`` seconds (rate <= 0: no pacing)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.t0 = time.perf_counter()
        self.n = 0

    async def tick(self, k: int = 1) -> None:
        self.n += k
        if self.rate <= 0:
            return
        ahead = self.n / self.rate - (time.perf_counter() - self.t0)
        if ahead > 0.005:
            await asyncio.sleep(ahead)


class ReplayClock:
    """Pace a replay by the readings' own timestamps, ``speed`` times faster than real time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.first_ts: float | None = None
        self.t0 = 0.0

    async def wait_for(self, ts: dt.datetime) -> None:
        if self.speed <= 0 or math.isinf(self.speed):
            return
        epoch = ts.timestamp()
        if self.first_ts is None:
            self.first_ts, self.t0 = epoch, time.perf_counter()
            return
        due = (epoch - self.first_ts) / self.speed - (time.perf_counter() - self.t0)
        if due > 0.005:
            await asyncio.sleep(min(due, 3600.0))


def json_bytes(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class RunReport:
    """What a publisher command did: counts per topic, rejected rows (all of them)."""

    sent: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


def progress_bar(total: int | None, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar on stderr; ``enabled=None``: only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rows", disable=not progress_enabled(enabled), mininterval=0.5)
