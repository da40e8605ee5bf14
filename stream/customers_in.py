"""Stage ``customers_in``: registry records and tombstones -> the customer's by-customer partition.

An invalid record is dead-lettered (with the `customers` topic as its source),
and so is a record naming a ``tariff_plan`` the tariff catalogue does not have
(``unknown_tariff_plan``: the whole record is refused, the customer's previous
record stays in force); a tombstone (null value) becomes a ``customer_deleted`` envelope. Every batch's
outputs are delivered before the batch is acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from meterwatch.contracts import DeadLetterError
from stream.context import StageContext
from stream.decode import decode_customer
from stream.envelope import Envelope

log = logging.getLogger(__name__)

__all__ = ["CustomersInStage"]


class CustomersInStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    async def agent(self, stream: Any) -> AsyncIterator[None]:
        ctx = self.ctx
        async for events in stream.take_events(ctx.batch_max, within=ctx.batch_within_s):
            for event in events:
                self.apply(event)
            await ctx.deliver()
            yield None

    def apply(self, event: Any) -> None:
        ctx = self.ctx
        m = event.message
        ctx.track(event)
        try:
            if event.value is None:
                if m.key:
                    cid = bytes(m.key).decode("utf-8", "replace")
                    ctx.forward(Envelope(kind="customer_deleted", customer_id=cid))
                    ctx.metrics.inc("customer_tombstones")
                return
            rec = decode_customer(event.value)
            if isinstance(rec, DeadLetterError):
                ctx.dead.send(rec, event.value, m.topic, m.partition, m.offset)
                return
            if rec.tariff_plan is not None and not ctx.engine.tariffs.knows(rec.tariff_plan):
                err = DeadLetterError(
                    code="unknown_tariff_plan",
                    message=f"tariff_plan {rec.tariff_plan!r} is not in the tariff catalogue "
                    "(MW_TARIFFS_FILE)",
                    field="tariff_plan",
                )
                ctx.dead.send(err, event.value, m.topic, m.partition, m.offset)
                return
            ctx.metrics.inc("customer_records")
            ctx.forward(Envelope(kind="customer", customer_id=rec.customer_id, customer=rec))
        except Exception as exc:
            log.exception("customers_in failed at %s@%d", m.tp, m.offset)
            ctx.dead.send(ctx.dead.processing_error(exc), event.value, m.topic, m.partition, m.offset)
