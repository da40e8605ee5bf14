"""Bulk writes to a topic for benchmarks and fillers: aiokafka record batches per partition.

The benchmarks fill topics with millions of records; what they measure is the consumer, so
the filler skips the per-record ``send`` path: records are grouped by partition (the same
murmur2 partition as the worker's producer, ``stream.produce.partition_for``) and sent as
whole record batches.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stream.produce import partition_for


class BatchWriter:
    """Records queued per partition with :meth:`add`, sent as record batches by :meth:`flush`."""

    def __init__(self, producer: Any, topic: str, partitions: int) -> None:
        self.p, self.topic, self.n = producer, topic, partitions
        self.pending: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.bytes = 0
        self.records = 0

    def add(self, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        """Queue one record (partition: the key's, unless given)."""
        part = partition_for(key, self.n) if partition is None else partition
        self.pending.setdefault(part, []).append((key, value))
        self.bytes += len(key) + len(value or b"")
        self.records += 1

    async def flush(self) -> None:
        """Send everything queued (full batches as they fill) and wait for the acks."""
        futs = []
        for part, recs in self.pending.items():
            batch = self.p.create_batch()
            for k, v in recs:
                if batch.append(key=k, value=v, timestamp=None) is None:
                    futs.append(await self.p.send_batch(batch, self.topic, partition=part))
                    batch = self.p.create_batch()
                    batch.append(key=k, value=v, timestamp=None)
            futs.append(await self.p.send_batch(batch, self.topic, partition=part))
        self.pending = {}
        await asyncio.gather(*futs)
