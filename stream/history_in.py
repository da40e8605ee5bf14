"""Stage ``history_in``: bootstrap history rows -> the customer's by-customer partition.

Consecutive rows of one customer travel as one ``history`` envelope. An invalid
row is dead-lettered; plausibility (future days, kWh beyond the meter's rating)
is checked on the customer's partition, where its registry record is known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from meterwatch.contracts import DeadLetterError, HistoryRow
from stream.context import StageContext
from stream.decode import decode_history
from stream.envelope import Envelope, Source

__all__ = ["HistoryInStage"]


class HistoryInStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    async def agent(self, stream: Any) -> AsyncIterator[None]:
        ctx = self.ctx
        async for events in stream.take_events(ctx.batch_max, within=ctx.batch_within_s):
            self.apply(events)
            await ctx.deliver()
            yield None

    def apply(self, events: list[Any]) -> None:
        ctx = self.ctx
        run: list[HistoryRow] = []
        src: Source | None = None
        for event in events:
            m = event.message
            ctx.track(event)
            row = decode_history(event.value)
            if isinstance(row, DeadLetterError):
                ctx.dead.send(row, event.value, m.topic, m.partition, m.offset)
                continue
            ctx.metrics.inc("history_rows")
            if run and run[-1].customer_id != row.customer_id:
                self._send(run, src)
                run = []
            if not run:
                src = Source(t=m.topic, p=m.partition, o=m.offset)  # the run's first row
            run.append(row)
        if run:
            self._send(run, src)

    def _send(self, run: list[HistoryRow], src: Source | None) -> None:
        self.ctx.forward(Envelope(kind="history", customer_id=run[-1].customer_id, history=run, src=src))
