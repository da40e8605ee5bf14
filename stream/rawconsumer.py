"""The `meter-readings` consumer: plain aiokafka, not Faust (a measured performance departure).

Why: validating and re-keying a reading costs a few microseconds; pushing it
through Faust's consumer, conductor, channel and stream costs tens (measured:
the worker went from 4,500-5,300 to 9,500-10,000 readings/s with this and
stream/readings_group.py). The first stage of the worker therefore reads
`meter-readings` with its own consumer (group ``<app_id>-ingest``) in
``getmany`` batches, hands each batch to the ingest stage (stream/ingest.py,
which fills the batch outputs: re-keyed groups, dead letters, parked
readings), waits until those outputs are delivered, and only then commits the
batch's offsets. A kill -9 at any point loses nothing: what was not
committed is read again, and the profile stage recognises the redelivered
readings (per-partition source watermark; domain de-duplication).

On a rebalance nothing is waited for: a batch in flight whose partitions were
revoked fails its commit and is read again by the new owner, which is a
duplicate the profile stage already absorbs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

log = logging.getLogger(__name__)

__all__ = ["RawIngest"]


class RawIngest:
    """Consume a topic in batches: ``process(records)`` then ``await deliver()``, then commit.

    ``process`` is synchronous and must not raise for bad input (it dead-letters);
    ``deliver`` returns once every output of the batch is acknowledged by the broker.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        client_id: str,
        process: Callable[[Sequence[Any]], None],
        deliver: Callable[[], Awaitable[None]],
        ready: asyncio.Event,
        batch_max: int,
        poll_ms: int = 50,
        session_timeout_ms: int = 10_000,
        security: dict[str, Any] | None = None,  # meterwatch.connections.kafka_security
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security or {}
        self.topic = topic
        self.group_id = group_id
        self.client_id = client_id
        self._process = process
        self._deliver = deliver
        self._ready = ready
        self.batch_max = batch_max
        self.poll_ms = poll_ms
        self.session_timeout_ms = session_timeout_ms
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.positions: dict[Any, int] = {}  # TopicPartition -> next offset to process
        self.batches = 0
        self.commit_failures = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ingest:{self.topic}")

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Finish the batch in flight (delivered and committed), then leave the group."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.warning("ingest did not finish its batch within %.0f s; stopping it", timeout_s)
                self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def highwater(self, tp: Any) -> int | None:
        if self._consumer is None:
            return None
        try:
            hw = self._consumer.highwater(tp)
        except Exception:  # no longer assigned
            return None
        return int(hw) if hw is not None else None

    def lag(self) -> int:
        total = 0
        for tp, pos in list(self.positions.items()):
            hw = self.highwater(tp)
            if hw is not None:
                total += max(hw - pos, 0)
        return total

    async def _run(self) -> None:
        positions = self.positions

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                for tp in revoked:
                    positions.pop(tp, None)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                return None

        await self._ready.wait()  # the meter index has caught up: readings can be placed
        if self._stopping:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_max,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=1000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.security,
        )
        consumer.subscribe([self.topic], listener=Listener())
        await consumer.start()
        self._consumer = consumer
        while not self._stopping:
            try:
                batch = await consumer.getmany(timeout_ms=self.poll_ms, max_records=self.batch_max)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest: fetching %s failed; retrying", self.topic)
                await asyncio.sleep(0.5)
                continue
            if not batch:
                continue
            records = [r for recs in batch.values() for r in recs]
            self._process(records)
            await self._deliver()  # delivered (or the process exits) before the commit
            offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items() if recs}
            for tp, off in offsets.items():
                positions[tp] = off
            self.batches += 1
            try:
                await consumer.commit(offsets)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # rebalanced meanwhile: the new owner reads the batch again
                self.commit_failures += 1
                log.warning("ingest: commit of %d partitions failed (%s); read again", len(offsets), exc)
