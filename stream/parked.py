"""Stage ``parked``: readings of meters the registry does not know yet wait here.

The ingest stage parks such a reading on ``<app>-parked`` (policy ``wait``).
This agent keeps the parked events in memory without acknowledging them; when
the meter appears in the index the reading is forwarded to its customer's
partition (marked ``parked``: the source watermark does not apply to it), and
after ``MW_UNKNOWN_METER_WAIT_S`` it is dead-lettered (``unknown_meter``,
"waited N s"). An event is acknowledged only once what it produced is
delivered, so parked readings survive a crash.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from stream.context import StageContext
from stream.deadletters import mismatch_error, unknown_error
from stream.envelope import Envelope
from stream.ingest import IngestStage
from stream.registry import Mismatch

log = logging.getLogger(__name__)

__all__ = ["ParkedStage"]

RETRY_EVERY_S = 0.05


class ParkedStage:
    def __init__(self, ctx: StageContext, ingest: IngestStage) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.parked: deque[tuple[Any, Envelope, float]] = deque()
        self._retried = 0.0

    async def agent(self, stream: Any) -> AsyncIterator[None]:
        async for event in stream.noack().events():
            try:
                env = Envelope.model_validate_json(event.value)
            except ValidationError:
                log.error("undecodable parked message at %s@%d", event.message.tp, event.message.offset)
                await stream.ack(event)
                continue
            deadline = event.message.timestamp + self.ctx.settings.unknown_meter_wait_s
            self.parked.append((event, env, deadline))
            # Retry at once only when this reading can leave now, and at most every 50 ms (each
            # retry waits for its outputs' delivery); the rest goes with the next retry or the
            # 1 s housekeeping.
            r = env.reading
            now = time.monotonic()
            if r is not None and self.ctx.index.resolve(r.meter_id, r.customer_id) is not None:
                if now - self._retried >= RETRY_EVERY_S:
                    self._retried = now
                    await self.retry()
            yield None

    def forget(self, revoked: set[Any]) -> None:
        """Drop the parked events of revoked partitions (their new owner reads them again)."""
        self.parked = deque(e for e in self.parked if e[0].message.tp not in revoked)

    async def retry(self) -> None:
        """Forward parked readings whose meter is now known; dead-letter the expired ones.

        A parked event is acknowledged only after what it produced is delivered.
        """
        ctx = self.ctx
        if not self.parked:
            await ctx.deliver()
            return
        done: list[Any] = []
        now = time.time()
        keep: deque[tuple[Any, Envelope, float]] = deque()
        for event, env, deadline in self.parked:
            if self._leave(env, now >= deadline):
                done.append(event)
            else:
                keep.append((event, env, deadline))
        self.parked = keep
        ctx.metrics.set_gauge("parked_readings", len(keep))
        await ctx.deliver()
        for event in done:
            event.ack()

    def _leave(self, env: Envelope, expired: bool) -> bool:
        """Forward or dead-letter one parked reading; False when it keeps waiting."""
        ctx = self.ctx
        r = env.reading
        assert r is not None
        found = ctx.index.resolve(r.meter_id, r.customer_id)
        if isinstance(found, Mismatch):
            ctx.dead.send_envelope(env, mismatch_error(r, found.owner))
        elif found is not None:
            err = self.ingest.check_kwh(r, found)
            if err is not None:
                ctx.dead.send_envelope(env, err)
            else:
                ctx.forward(env.model_copy(update={"customer_id": found, "raw": None, "parked": True}))
                ctx.metrics.inc("unparked")
        elif expired:
            err = unknown_error(r)
            wait_s = ctx.settings.unknown_meter_wait_s
            ctx.dead.send_envelope(
                env, err.model_copy(update={"message": f"{err.message}; waited {wait_s:g} s"})
            )
        else:
            return False
        return True
