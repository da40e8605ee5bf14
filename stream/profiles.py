"""Stage ``profiles``: the by-customer topic -> per-customer state, alerts, features, read model.

Every customer's state lives on exactly one partition of ``<app>-by-customer``;
the `customers` and `profiles` tables are co-partitioned with it. The agent
consumes in batches (``take_events``), keeps decoded state in memory between
batches (dropped on rebalance), applies each envelope (stream/fold.py) and
writes each changed customer once per batch, then the partition's counters
(stream/state.py); the batch is acknowledged only after all of it is delivered.

Table writes go to the local store of the event's partition and, batched, to
the table's changelog partition of the same number (what ``Table.__setitem__``
does, minus Faust's per-record producer, whose buffer could let a commit
overtake a changelog record).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from baselines.customer import CustomerConfig
from meterwatch.contracts import CustomerRecord, MeterReading
from stream.context import StageContext
from stream.envelope import Envelope, Source
from stream.faust_internals import use_event
from stream.fold import Batch, Fold
from stream.readings_group import decode_group, is_group
from stream.state import (
    COUNTERS_KEY,
    CustomerState,
    LastWrite,
    PartitionCounters,
    UnreadableState,
    decode_customer,
    encode_customer,
)

log = logging.getLogger(__name__)

__all__ = ["ProfileStage"]


class ProfileStage:
    """The profile agent and its per-partition caches (customer states, counters)."""

    def __init__(self, ctx: StageContext, customers_table: Any, profiles_table: Any) -> None:
        self.ctx = ctx
        self.customers_table = customers_table
        self.profiles_table = profiles_table
        self.cache: dict[int, dict[str, CustomerState]] = defaultdict(dict)
        self.counters: dict[int, PartitionCounters] = {}
        self.next_offset: dict[int, int] = {}  # per partition: the offset the consumer should deliver next
        self.fold = Fold(ctx, self)

    async def agent(self, stream: Any) -> AsyncIterator[None]:
        ctx = self.ctx
        async for events in stream.take_events(ctx.batch_max, within=ctx.batch_within_s):
            by_part: dict[int, list[Any]] = defaultdict(list)
            for event in events:
                by_part[event.message.partition].append(event)
            for partition, evs in by_part.items():
                self.apply_partition(partition, evs)
            await ctx.deliver()  # changelogs, alerts, features: delivered before the batch is acked
            yield None

    def revoke(self, partitions: set[int]) -> None:
        for p in partitions:
            self.cache.pop(p, None)
            self.counters.pop(p, None)
            self.next_offset.pop(p, None)

    def check_order(self, partition: int, events: list[Any]) -> None:
        """Count and log offsets the consumer skipped on this partition (``delivery_gaps``).

        ``<app>-by-customer`` is written without transactions or compaction, so its
        offsets are contiguous: a jump means the consumer never delivered a message,
        and its inputs are lost (stream/faust_internals.py, items 2 and 3, are the
        known causes, fixed). Redelivered offsets (after a restart or a rebalance) are normal.
        """
        expected = self.next_offset.get(partition)
        for event in events:
            offset = event.message.offset
            if expected is not None and offset > expected:
                self.ctx.metrics.inc("delivery_gaps")
                log.error(
                    "by-customer partition %d: offsets %d..%d were never delivered to the profile stage",
                    partition,
                    expected,
                    offset - 1,
                )
            if expected is None or offset >= expected:
                expected = offset + 1
        if expected is not None:
            self.next_offset[partition] = expected

    # ------------------------------------------------------------------ Store (for the fold)
    def put_record(self, partition: int, customer_id: str, body: bytes) -> None:
        self._put(
            self.customers_table, self.ctx.names.customers_changelog, partition, customer_id.encode(), body
        )

    def drop(self, partition: int, customer_id: str) -> None:
        self.cache[partition].pop(customer_id, None)

    # ------------------------------------------------------------------ one partition's batch
    def apply_partition(self, partition: int, events: list[Any]) -> None:
        use_event(events[-1])  # the tables' partition (see stream/faust_internals.py)
        self.check_order(partition, events)
        batch = Batch(partition, offset=events[-1].message.offset)
        counters = self._counters(partition)
        for event in events:
            self.ctx.track(event)
            if is_group(event.value):
                self._apply_group(event, batch)
                continue
            try:
                env = Envelope.model_validate_json(event.value)
            except ValidationError:
                self.ctx.metrics.inc("internal_invalid")
                log.error("undecodable by-customer message at %s@%d", event.message.tp, event.message.offset)
                continue
            self._apply_safely(env, batch, event.value)
        self._store(batch, counters)

    def _apply_group(self, event: Any, batch: Batch) -> None:
        """A ``readings`` group from ingest: each item is applied as its own reading envelope."""
        group = decode_group(event.value)
        if group is None:
            self.ctx.metrics.inc("internal_invalid")
            log.error("undecodable readings group at %s@%d", event.message.tp, event.message.offset)
            return
        topic, items = group
        for item in items:
            try:
                cid, p, o, body = item
                reading = MeterReading.model_validate(body)
            except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
                self.ctx.metrics.inc("internal_invalid")
                log.error("undecodable reading in group at %s@%d", event.message.tp, event.message.offset)
                continue
            env = Envelope(kind="reading", customer_id=cid, reading=reading, src=Source(t=topic, p=p, o=o))
            self._apply_safely(env, batch, None)

    def _apply_safely(self, env: Envelope, batch: Batch, raw: bytes | None) -> None:
        try:
            self._apply(env, batch, raw)
        except Exception as exc:  # a bug must not stop the partition: dead-letter, count, go on
            log.exception("processing %s for customer %s failed", env.kind, env.customer_id)
            if env.kind == "reading":
                self.ctx.dead.send_envelope(env, self.ctx.dead.processing_error(exc))
            else:
                self.ctx.metrics.inc_labelled("errors", env.kind)

    def _apply(self, env: Envelope, batch: Batch, raw: bytes | None) -> None:
        st = self._state(batch, env.customer_id)
        fold = self.fold
        if env.kind == "reading":
            fold.reading(st, env, batch, raw)
        elif env.kind == "customer":
            assert env.customer is not None
            fold.customer(st, env.customer, batch)
        elif env.kind == "customer_deleted":
            fold.deleted(st, batch)
        elif env.kind == "history":
            fold.history(st, env, batch, raw)
        elif env.kind == "segment":
            fold.segment(st, env, batch)

    # ------------------------------------------------------------------ state
    def _counters(self, partition: int) -> PartitionCounters:
        c = self.counters.get(partition)
        if c is None:
            c = self.counters[partition] = PartitionCounters.decode(self.profiles_table.get(COUNTERS_KEY))
        return c

    def _state(self, batch: Batch, cid: str) -> CustomerState:
        cache = self.cache[batch.partition]
        st = cache.get(cid)
        if st is not None:
            return st
        st = CustomerState(cid)
        key = cid.encode()
        rec_raw = self.customers_table.get(key)
        if rec_raw is not None:
            st.record = CustomerRecord.model_validate_json(rec_raw)
            st.config = CustomerConfig.from_record(st.record)
        raw = self.profiles_table.get(key)
        if raw is not None:
            try:
                decode_customer(st, raw)
            except UnreadableState as exc:
                # one bad stored value must not disable the customer for good: start afresh
                log.error("customer %s: %s; its profile starts again", cid, exc)
                self.ctx.metrics.inc("state_unreadable")
                record, config = st.record, st.config
                st = CustomerState(cid)
                st.record, st.config = record, config
            self.counters[batch.partition].recover(st.last_write)
        cache[cid] = st
        return st

    def _store(self, batch: Batch, counters: PartitionCounters) -> None:
        """Write the batch's changed and deleted customers, then the partition's counters (last)."""
        names, readmodel = self.ctx.names, self.ctx.readmodel
        for cid in batch.deleted:
            key = cid.encode()
            if key in self.customers_table:
                self._delete(self.customers_table, names.customers_changelog, batch.partition, key)
            if key in self.profiles_table:
                self._delete(self.profiles_table, names.profiles_changelog, batch.partition, key)
        for cid, st in batch.dirty.items():
            if cid in batch.deleted:
                continue
            counters.add(st.batch_readings, st.batch_duplicates)
            st.last_write = LastWrite(batch.offset, st.batch_readings, st.batch_duplicates)
            st.batch_readings = st.batch_duplicates = 0
            body = encode_customer(st)
            self._put(self.profiles_table, names.profiles_changelog, batch.partition, cid.encode(), body)
            if readmodel is not None and st.profile is not None:
                readmodel.put_state(cid, body)  # the API builds the snapshot from it (on read)
        if counters.changed:
            counters.offset = batch.offset
            counters.changed = False
            body = counters.encode()
            self._put(self.profiles_table, names.profiles_changelog, batch.partition, COUNTERS_KEY, body)
            if self.ctx.readmodel is not None:
                self.ctx.readmodel.set_partition_counters(batch.partition, counters.as_metrics())

    def _put(self, table: Any, changelog: str, partition: int, key: bytes, body: bytes) -> None:
        table.data[key] = body
        self.ctx.out.add(changelog, partition, key, body)

    def _delete(self, table: Any, changelog: str, partition: int, key: bytes) -> None:
        del table.data[key]
        self.ctx.out.add(changelog, partition, key, None)
