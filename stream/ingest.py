"""Stage ``ingest``: validate `meter-readings`, check plausibility, place each reading, re-key it.

Per reading: decode (strict contract), bound its time, find its customer in the
meter index (the registry decides ownership), bound its kWh by the customer's
meter rating, then group it for its by-customer partition
(stream/readings_group.py). A reading of an unknown meter is parked
(``MW_UNKNOWN_METER_POLICY=wait``) or dead-lettered. Nothing in the input may
crash the worker: a failure of this code on one reading dead-letters it as
``processing_error``. The consumer around it is stream/rawconsumer.py (it
delivers the outputs before it commits).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from meterwatch.contracts import DeadLetterError, MeterReading
from stream.context import StageContext
from stream.deadletters import mismatch_error, unknown_error
from stream.decode import decode_reading
from stream.envelope import Envelope, Source
from stream.plausibility import check_interval_kwh, check_ts
from stream.produce import partition_for
from stream.readings_group import encode_groups, item
from stream.registry import Mismatch

log = logging.getLogger(__name__)

__all__ = ["IngestStage", "raw_str"]


def raw_str(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


class IngestStage:
    """``process(records)`` fills the outputs for one consumer batch (synchronous, never raises)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def process(self, records: Sequence[Any]) -> None:
        """Validate, place and re-key a batch of aiokafka ConsumerRecords of `meter-readings`."""
        ctx = self.ctx
        nparts = ctx.settings.readings_partitions
        groups: dict[int, list[bytes]] = defaultdict(list)
        now = ctx.clock()
        for m in records:
            ctx.metrics.inc("readings_in")
            raw: bytes | None = m.value
            try:
                cid = self._place(m, raw, now)
            except Exception as exc:  # nothing in the input may crash the worker
                log.exception("ingest failed on %s[%d]@%d", m.topic, m.partition, m.offset)
                ctx.dead.send(ctx.dead.processing_error(exc), raw, m.topic, m.partition, m.offset)
                continue
            if cid is not None:
                assert raw is not None
                groups[partition_for(cid.encode(), nparts)].append(item(cid, m.partition, m.offset, raw))
        for part, items in groups.items():
            for body in encode_groups(ctx.names.readings, items):
                ctx.out.add(ctx.names.by_customer, part, None, body)

    def _place(self, m: Any, raw: bytes | None, now: dt.datetime) -> str | None:
        """The customer of a valid, plausible reading; None when it was dead-lettered or parked."""
        ctx = self.ctx
        r = decode_reading(raw)
        if isinstance(r, DeadLetterError):
            ctx.dead.send(r, raw, m.topic, m.partition, m.offset)
            return None
        err = check_ts(r.ts, now, ctx.settings)
        if err is not None:
            ctx.dead.send(err, raw, m.topic, m.partition, m.offset)
            return None
        found = ctx.index.resolve(r.meter_id, r.customer_id)
        if isinstance(found, Mismatch):
            ctx.dead.send(mismatch_error(r, found.owner), raw, m.topic, m.partition, m.offset)
            return None
        if found is None:
            self._unknown(r, raw, Source(t=m.topic, p=m.partition, o=m.offset))
            return None
        err = self.check_kwh(r, found)
        if err is not None:
            ctx.dead.send(err, raw, m.topic, m.partition, m.offset)
            return None
        return found

    def check_kwh(self, r: MeterReading, customer_id: str) -> DeadLetterError | None:
        """The interval's kWh against the customer's meter rating (registers: the domain checks)."""
        if r.kwh is None:
            return None
        return check_interval_kwh(r.kwh, r.interval_s, self.ctx.index.max_kw(customer_id))

    def _unknown(self, r: MeterReading, raw: bytes | None, src: Source) -> None:
        ctx = self.ctx
        if ctx.settings.unknown_meter_policy == "wait":
            park = Envelope(kind="reading", customer_id="", reading=r, src=src, raw=raw_str(raw))
            ctx.out.add_keyed(ctx.names.parked, r.meter_id.encode(), park.dumps())
            ctx.metrics.inc("parked")
        else:
            ctx.dead.send(unknown_error(r), raw, src.t, src.p, src.o)
