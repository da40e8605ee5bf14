"""Unit-test harness of the stream stages: no broker, no disk, no Redis.

``stage_worker`` builds a real :class:`stream.worker.Worker` on Faust's ``memory://``
store with :class:`MemoryOutputs` instead of the Kafka batch producer and a fixed
clock; each test drives one stage's agent with Faust's ``agent.test_context()``
(``await agent.put(value, partition=p)`` runs the real agent body on that event).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from meterwatch.settings import Settings
from stream.produce import partition_for
from stream.worker import Worker

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


class MemoryOutputs:
    """The ``stream.produce.Outputs`` of a unit test: records what each stage produced."""

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[int, bytes | None, bytes | None]]] = defaultdict(list)
        self.nparts: dict[str, int] = {}
        self.flushes = 0

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        self.records[topic].append((partition, key, value))

    def add_keyed(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.records[topic].append((partition_for(key, self.nparts.get(topic, 4)), key, value))

    def set_partitions(self, topic: str, n: int) -> None:
        self.nparts[topic] = n

    async def partitions(self, topic: str) -> int:
        return self.nparts.get(topic, 4)

    async def flush(self) -> None:
        self.flushes += 1

    def values(self, topic: str) -> list[Any]:
        """The JSON values sent to ``topic`` (None for tombstones)."""
        return [None if v is None else json.loads(v) for _, _, v in self.records[topic]]

    def take(self, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
        out, self.records[topic] = self.records[topic], []
        return out


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(app_id="unit", data_dir=tmp_path, readings_partitions=4)


@pytest.fixture
def stage_worker(settings: Settings) -> Iterator[tuple[Worker, MemoryOutputs]]:
    out = MemoryOutputs()
    worker = Worker(settings, store="memory://", out=out, clock=lambda: NOW, batch_within_s=0.001)
    yield worker, out


def reading(meter: str, ts: str, kwh: float = 0.25, **kw: Any) -> dict[str, Any]:
    return {"meter_id": meter, "ts": ts, "kwh": kwh, **kw}


def record(cid: str, meters: list[str], **kw: Any) -> dict[str, Any]:
    return {"customer_id": cid, "meter_ids": meters, "timezone": "UTC", **kw}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
