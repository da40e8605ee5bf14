"""Stage ``customers_in``: registry records and tombstones -> the customer's by-customer partition.

An invalid record is dead-lettered (with the `customers` topic as its source),
and so is a record naming a ``tariff_plan`` the tariff catalogue does not have
(``unknown_tariff_plan``: the whole record is refused, the customer's previous
record stays in force); a tombstone (null value) is forwarded as a deletion.

Like the ingest stage (decision 0003), this stage runs on a plain aiokafka consumer
(stream/rawconsumer.py, group ``<app_id>-customers``), not on a Faust agent: a registry
of 100 k customers read at start-up paid Faust's per-event path twice per record (here and
in the profile stage), ~300 us of the ~330 us a record cost. ``process(records)`` handles one
consumer batch and sends, per by-customer partition, ONE message of its valid records and
tombstones in the order read (stream/customers_group.py, as readings are grouped, decision
0004); the consumer commits the batch only after these outputs are delivered.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from meterwatch.contracts import DeadLetterError
from stream.context import StageContext
from stream.customers_group import encode_groups, item
from stream.decode import decode_customer
from stream.produce import partition_for

log = logging.getLogger(__name__)

__all__ = ["CustomersInStage"]


class CustomersInStage:
    """``process(records)`` fills the outputs for one consumer batch (synchronous, never raises)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def process(self, records: Sequence[Any]) -> None:
        """Validate and group a batch of aiokafka ConsumerRecords of `customers`."""
        ctx = self.ctx
        nparts = ctx.settings.readings_partitions
        groups: dict[int, list[bytes]] = defaultdict(list)
        for m in records:
            try:
                found = self._one(m)
            except Exception as exc:  # nothing in the input may crash the worker
                log.exception("customers_in failed at %s[%d]@%d", m.topic, m.partition, m.offset)
                ctx.dead.send(ctx.dead.processing_error(exc), m.value, m.topic, m.partition, m.offset)
                continue
            if found is not None:
                cid, body = found
                groups[partition_for(cid.encode(), nparts)].append(item(cid, body))
        for part, items in groups.items():
            for body in encode_groups(items):
                ctx.out.add(ctx.names.by_customer, part, None, body)

    def _one(self, m: Any) -> tuple[str, bytes | None] | None:
        """(customer id, the record's JSON or None for a tombstone); None when dead-lettered."""
        ctx = self.ctx
        if m.value is None:
            if not m.key:
                return None
            ctx.metrics.inc("customer_tombstones")
            return bytes(m.key).decode("utf-8", "replace"), None
        rec = decode_customer(m.value)
        if isinstance(rec, DeadLetterError):
            ctx.dead.send(rec, m.value, m.topic, m.partition, m.offset)
            return None
        if rec.tariff_plan is not None and not ctx.engine.tariffs.knows(rec.tariff_plan):
            err = DeadLetterError(
                code="unknown_tariff_plan",
                message=f"tariff_plan {rec.tariff_plan!r} is not in the tariff catalogue (MW_TARIFFS_FILE)",
                field="tariff_plan",
            )
            ctx.dead.send(err, m.value, m.topic, m.partition, m.offset)
            return None
        ctx.metrics.inc("customer_records")
        return rec.customer_id, rec.model_dump_json().encode()
