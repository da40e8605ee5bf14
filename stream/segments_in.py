"""Stage ``segments_in``: segment assignments -> the customer's by-customer partition.

Batched: delivery is awaited once per batch (one round trip), not once per assignment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from meterwatch.contracts import SegmentAssignment
from stream.context import StageContext
from stream.envelope import Envelope

log = logging.getLogger(__name__)

__all__ = ["SegmentsInStage"]


class SegmentsInStage:
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
        ctx.track(event)
        try:
            a = SegmentAssignment.model_validate_json(event.value or b"")
        except ValidationError:
            m = event.message
            log.error("undecodable segment assignment at %s@%d", m.tp, m.offset)
            return
        ctx.forward(Envelope(kind="segment", customer_id=a.customer_id, segment=a))
