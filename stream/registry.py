"""The meter index: which customer owns which meter, known to every worker.

Readings arrive keyed by ``meter_id`` on partitions chosen by whoever
produced them, so the worker that reads a meter's partition must resolve any
meter. Every worker therefore reads the whole compacted `customers` topic
(all partitions, no consumer group, from the beginning) into this in-memory
index, the way a Kafka Streams GlobalKTable works. Per-customer facts used by
the rules live in the changelog-backed `customers` table on the customer's
partition; this index only answers "meter -> customer" and "is this customer
known".

>>> idx = MeterIndex()
>>> idx.apply("c1", ["m1", "m2"])
>>> idx.customer_of("m2"), idx.known("c1")
('c1', True)
>>> idx.apply("c1", ["m2"])           # m1 moved away
>>> idx.customer_of("m1") is None
True
>>> idx.apply("c1", None)             # tombstone
>>> idx.known("c1"), len(idx)
(False, 0)

The index also keeps each customer's meter rating (max kW) when it differs from
the default, so that the ingest stage can bound a reading's kWh before it is
re-keyed (stream/plausibility.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import CustomerRecord
from meterwatch.settings import Settings
from stream.plausibility import max_kw_for

log = logging.getLogger(__name__)


class Mismatch(NamedTuple):
    """A reading names another customer than the meter's registered owner."""

    owner: str


class MeterIndex:
    """meter_id -> customer_id, the set of known customers and their meter ratings (plain dicts)."""

    __slots__ = ("_customer_meters", "_max_kw", "_meter_customer", "default_max_kw")

    def __init__(self, default_max_kw: float = 100.0) -> None:
        self._meter_customer: dict[str, str] = {}
        self._customer_meters: dict[str, tuple[str, ...]] = {}
        self._max_kw: dict[str, float] = {}  # only customers whose rating is not the default
        self.default_max_kw = default_max_kw

    def __len__(self) -> int:
        return len(self._customer_meters)

    def apply(self, customer_id: str, meter_ids: Iterable[str] | None, max_kw: float | None = None) -> None:
        """Record a customer's meters (``None``: the customer was deleted) and its rating."""
        for m in self._customer_meters.pop(customer_id, ()):
            if self._meter_customer.get(m) == customer_id:
                del self._meter_customer[m]
        self._max_kw.pop(customer_id, None)
        if meter_ids is None:
            return
        meters = tuple(meter_ids)
        self._customer_meters[customer_id] = meters
        for m in meters:
            self._meter_customer[m] = customer_id
        if max_kw is not None and max_kw != self.default_max_kw:
            self._max_kw[customer_id] = max_kw

    def customer_of(self, meter_id: str) -> str | None:
        return self._meter_customer.get(meter_id)

    def known(self, customer_id: str) -> bool:
        return customer_id in self._customer_meters

    def max_kw(self, customer_id: str) -> float:
        """The customer's meter rating (kW).

        >>> idx = MeterIndex(100.0); idx.apply("c1", ["m1"], 30.0); idx.apply("c2", ["m2"])
        >>> idx.max_kw("c1"), idx.max_kw("c2")
        (30.0, 100.0)
        """
        return self._max_kw.get(customer_id, self.default_max_kw)

    def resolve(self, meter_id: str, customer_id: str | None) -> str | Mismatch | None:
        """The customer a reading belongs to, a :class:`Mismatch`, or None when it cannot be placed yet.

        The registry decides ownership: a ``customer_id`` that names another customer
        than the meter's registered owner is a mismatch. A known customer with a meter
        the registry assigns to nobody is accepted (the meter may be on its way).

        >>> idx = MeterIndex(); idx.apply("c1", ["m1"]); idx.apply("c2", ["m2"])
        >>> idx.resolve("m1", None), idx.resolve("mX", "c1"), idx.resolve("mX", "c9"), idx.resolve("mX", None)
        ('c1', 'c1', None, None)
        >>> idx.resolve("m1", "c2")
        Mismatch(owner='c1')
        """
        if customer_id is not None:
            if customer_id not in self._customer_meters:
                return None
            owner = self._meter_customer.get(meter_id)
            if owner is not None and owner != customer_id:
                return Mismatch(owner)
            return customer_id
        return self._meter_customer.get(meter_id)


class RegistryFollower:
    """Tails the whole `customers` topic into a :class:`MeterIndex` (one per worker process).

    ``ready`` is set once the index has caught up with the end offsets seen at start.
    """

    def __init__(
        self,
        settings: Settings,
        index: MeterIndex | None = None,
        rating: Callable[[CustomerRecord], float] | None = None,
    ) -> None:
        self.settings = settings
        self.index = index if index is not None else MeterIndex(settings.reading_max_kw)
        self.rating = rating if rating is not None else (lambda rec: max_kw_for(rec, settings))
        self.ready = asyncio.Event()
        self.records_seen = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="meterwatch-registry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _apply_raw(self, key: bytes | None, value: bytes | None) -> None:
        self.records_seen += 1
        if value is None:
            if key:
                self.index.apply(key.decode("utf-8", "replace"), None)
            return
        try:
            rec = CustomerRecord.model_validate_json(value)
        except ValidationError:
            return  # the customers agent dead-letters it; the index ignores it
        self.index.apply(rec.customer_id, rec.meter_ids, self.rating(rec))

    async def _run(self) -> None:
        topic = self.settings.topic_customers
        while True:
            # group-less and subscribed: the client fetches the topic's metadata at start and
            # assigns itself every partition (no rebalancing, no committed offsets)
            consumer = AIOKafkaConsumer(
                topic,
                **kafka_client_kwargs(self.settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id=f"{self.settings.app_id}-registry",
            )
            try:
                await consumer.start()
                tps = sorted(consumer.assignment())
                if not tps:  # the topic may be created later: ask again with a new client
                    await asyncio.sleep(0.5)
                    continue
                await self._follow(consumer, tps)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("registry follower failed; restarting in 1 s")
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Read every partition from the beginning, then follow; ``ready`` once caught up."""
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        if not pending:
            self.ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, msgs in batch.items():
                for m in msgs:
                    self._apply_raw(m.key, m.value)
                if tp in pending and msgs and msgs[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
            if pending and not self.ready.is_set():
                # partitions with only compacted-away/aborted tail records
                for tp in list(pending):
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
            if not pending and not self.ready.is_set():
                log.info("meter index ready: %d customers", len(self.index))
                self.ready.set()
