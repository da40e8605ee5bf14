"""Stage ``segmenter``: segment features -> one online model -> segment assignments.

One partition (one model for all customers): whichever process owns it runs the
model (``baselines.segments.Segmenter``). Its state lives in the `segmenter`
table: the model under ``model`` (checkpointed when it hands out assignments
and at most every few seconds otherwise: a crash may lose the learning of the
last seconds, never an assignment), and who is counted in which segment per
customer under ``m:<customer_id>`` (membership grows with the population, the
model value must not). Table records and assignments are outputs of the batch
like any other: delivered before the batch is acknowledged. (Writing the table
through Faust's producer let a membership deletion be lost in a kill -9 while
its input was committed: a restored model then counted a deleted customer.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from stream.context import StageContext
from stream.envelope import FeaturesEvent
from stream.faust_internals import use_event

if TYPE_CHECKING:  # imported when the model is first needed: River costs ~2-3 s at start-up
    from baselines.segments import Assignment, Segmenter

log = logging.getLogger(__name__)

__all__ = ["SegmenterStage"]

CHECKPOINT_S = 5.0
SUMMARY_EVERY_S = 1.0
MODEL_KEY = b"model"
MEMBER_PREFIX = b"m:"  # + customer_id -> the segment id the model counts it in
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


class SegmenterStage:
    def __init__(self, ctx: StageContext, table: Any) -> None:
        self.ctx = ctx
        self.table = table
        self.model: Segmenter | None = None
        self._saved = 0.0
        self._summarised = 0.0

    def revoke(self) -> None:
        self.model = None

    def load(self) -> Segmenter:
        """The model from the table (membership per customer), or a new one."""
        from baselines.segments import Segmenter, SegmenterConfig

        raw = self.table.get(MODEL_KEY)
        if raw is not None:
            try:
                d = orjson.loads(raw)
                seg = Segmenter.from_dict(d)
                if d.get("state_version", 1) >= 2:  # membership is stored per customer
                    seg.set_members(
                        {
                            bytes(k[len(MEMBER_PREFIX) :]).decode(): int(v)
                            for k, v in self.table.items()
                            if bytes(k).startswith(MEMBER_PREFIX)
                        }
                    )
                return seg
            except Exception:
                log.exception("segmenter state unreadable; starting a new model")
        return Segmenter(SegmenterConfig(max_segments=self.ctx.settings.max_segments))

    async def agent(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(1000, within=0.2):
            use_event(events[-1])  # the table's partition (see stream/faust_internals.py)
            self.apply(events)
            await self.ctx.deliver()
            yield None

    def apply(self, events: list[Any]) -> None:
        if self.model is None:
            self.model = self.load()
        seg = self.model
        out: list[Assignment] = []
        for event in events:
            self.ctx.track(event)
            try:
                fe = FeaturesEvent.model_validate_json(event.value or b"")
            except ValidationError:
                log.error("undecodable features at %s@%d", event.message.tp, event.message.offset)
                continue
            try:
                if fe.forget:
                    seg.forget(fe.current, fe.customer_id)
                else:
                    out.extend(seg.observe(fe.customer_id, fe.features, current=fe.current))
            except Exception:
                log.exception("segmenter failed on %s", fe.customer_id)
        self._store(seg, out, partition=events[-1].message.partition)

    def _store(self, seg: Segmenter, out: list[Assignment], partition: int) -> None:
        ctx = self.ctx
        now = time.monotonic()
        members = seg.take_member_changes()
        for cid, k in members.items():
            self._put(partition, MEMBER_PREFIX + cid.encode(), None if k is None else b"%d" % k)
        if out or members or now - self._saved >= CHECKPOINT_S:
            # the model is a statistical summary: checkpointed when it hands out assignments and
            # at most every few seconds otherwise (to_dict is not free)
            self._put(partition, MODEL_KEY, orjson.dumps(seg.to_dict(members=False), option=_JSON_OPTS))
            self._saved = now
        for a in out:
            c = a.to_contract()
            ctx.out.add_keyed(ctx.names.segments, c.customer_id.encode(), c.model_dump_json().encode())
        ctx.metrics.inc("segment_changes", len(out))
        if ctx.readmodel is not None and (out or members or now - self._summarised > SUMMARY_EVERY_S):
            self._summarised = now
            summaries = [s.model_dump() for s in seg.summaries()]
            ctx.readmodel.set_segments(orjson.dumps(summaries, option=_JSON_OPTS))

    def _put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Local store and (batched, delivered before the ack) changelog record; None deletes."""
        if value is None:
            if key not in self.table:
                return
            del self.table.data[key]
        else:
            self.table.data[key] = value
        self.ctx.out.add(self.ctx.names.segmenter_changelog, partition, key, value)
