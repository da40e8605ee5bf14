"""Batched producing on the hot path, through the Faust app's own aiokafka producer.

Faust's per-message ``send_soon`` costs tens of microseconds per record. The
hot paths (re-keying readings, writing profile changelogs) instead collect
records per topic-partition during a batch and hand them to aiokafka as whole
record batches (``create_batch`` / ``send_batch``).

``flush()`` returns only when every record added before the call is
*delivered* (acknowledged by the broker), including records that another
agent's concurrent flush took over: agents acknowledge their events only after
it returns, so no offset is committed for an event whose output could still be
lost. (Relying on Faust's commit, which flushes the producer first, is not
enough: a record another flush has taken but not yet handed to aiokafka is in
no producer buffer, and a kill -9 then loses it after its offset was
committed.) A record that cannot be delivered is fatal: see ``DeliveryFailed``.

Partitions of keyed records follow the Java/aiokafka default partitioner
(murmur2 of the key), so other producers agree on where a customer lives.

>>> partition_for(b"c1", 4) == partition_for(b"c1", 4)
True
>>> sorted({partition_for(f"c{i}".encode(), 4) for i in range(100)})
[0, 1, 2, 3]
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiokafka.partitioner import murmur2

__all__ = ["BatchProducer", "DeliveryFailed", "partition_for"]


def partition_for(key: bytes, partitions: int) -> int:
    """The default (murmur2) partition of ``key`` among ``partitions``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class DeliveryFailed(RuntimeError):
    """The broker did not take a record batch: the events behind it must not be acknowledged."""


class BatchProducer:
    """Collects records per (topic, partition) and sends them as record batches on ``flush``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._pending: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
        self._nparts: dict[str, int] = {}
        self.records = 0
        self.batches = 0
        self._lock = asyncio.Lock()  # flushes never interleave: per-partition order is kept
        self._inflight: list[asyncio.Future[Any]] = []  # handed to aiokafka, maybe not yet delivered

    def _producer(self) -> Any:
        return self.app.producer._ensure_producer()

    async def partitions(self, topic: str) -> int:
        n = self._nparts.get(topic)
        if n is None:
            parts = await self._producer().partitions_for(topic)
            n = self._nparts[topic] = len(parts)
        return n

    def set_partitions(self, topic: str, n: int) -> None:
        self._nparts[topic] = n

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        self._pending[(topic, partition)].append((key, value))

    def add_keyed(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Add with the default partitioner (the topic's partition count must be known)."""
        self._pending[(topic, partition_for(key, self._nparts[topic]))].append((key, value))

    def undelivered(self) -> int:
        """Batches handed to the producer and not yet acknowledged by the broker."""
        return sum(1 for f in self._inflight if not f.done())

    def __len__(self) -> int:
        return sum(len(v) for v in self._pending.values())

    async def flush(self) -> None:
        """Send everything collected and wait until all of it is delivered.

        Raises ``DeliveryFailed`` if the broker refused a batch (after aiokafka's retries).
        """
        async with self._lock:
            # Taking the lock even with nothing pending: a concurrent flush may have taken
            # this caller's records and still be handing them to the producer.
            if self._pending:
                await self._flush()
            waiting = [f for f in self._inflight if not f.done()]
            done = [f for f in self._inflight if f.done()]
            self._inflight = list(waiting)  # a copy: later flushes append to it
        for f in done + waiting:
            try:
                await f
            except asyncio.CancelledError:
                if f.cancelled():
                    raise DeliveryFailed("a record batch was cancelled before delivery") from None
                raise  # this task itself is being cancelled
            except Exception as exc:
                msg = f"a record batch was not delivered: {type(exc).__name__}: {exc}"
                raise DeliveryFailed(msg) from exc

    async def _flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(list)
        producer = self._producer()
        for (topic, partition), records in pending.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    self._inflight.append(await producer.send_batch(batch, topic, partition=partition))
                    self.batches += 1
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:  # pragma: no cover
                        raise ValueError(f"record of {len(value or b'')} bytes does not fit a batch")
            if batch.record_count():
                self._inflight.append(await producer.send_batch(batch, topic, partition=partition))
                self.batches += 1
            self.records += len(records)

