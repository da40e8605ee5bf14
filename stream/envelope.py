"""The internal by-customer topic: one envelope type for everything a customer's partition sees.

Readings (re-keyed from meter to customer), registry records (and tombstones),
history rows and segment assignments all travel on ONE topic keyed by
``customer_id``. One topic means one order per customer (a registry update is
applied before the readings that follow it) and no co-partitioning
assumptions about topics that other systems produce with other partitioners.

>>> from meterwatch.contracts import MeterReading
>>> r = MeterReading.model_validate({"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": 0.5})
>>> env = Envelope(kind="reading", customer_id="c1", reading=r, src=Source(t="meter-readings", p=0, o=7))
>>> Envelope.model_validate_json(env.dumps()).reading.kwh
0.5
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from meterwatch.contracts import CustomerRecord, HistoryRow, MeterReading, SegmentAssignment, SegmentFeatures

Kind = Literal["reading", "customer", "customer_deleted", "history", "segment"]


class Source(BaseModel):
    """Where the original message came from (for dead letters): topic, partition, offset."""

    model_config = ConfigDict(frozen=True)

    t: str
    p: int
    o: int


class Envelope(BaseModel):
    """One message on the internal by-customer topic (key: customer_id)."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    customer_id: str
    reading: MeterReading | None = None
    customer: CustomerRecord | None = None
    history: list[HistoryRow] | None = None
    segment: SegmentAssignment | None = None
    src: Source | None = None
    raw: str | None = None  # the original text, kept while a reading waits for its meter
    # True on a reading that waited for its meter: it comes after later readings of its source
    # partition, so the per-partition redelivery watermark does not apply to it
    parked: bool | None = None

    def dumps(self) -> bytes:
        """Compact JSON (unset fields left out).

        >>> Envelope(kind="customer_deleted", customer_id="c1").dumps()
        b'{"kind":"customer_deleted","customer_id":"c1"}'
        """
        return self.model_dump_json(exclude_none=True).encode()


class FeaturesEvent(SegmentFeatures):
    """One value on the segment-features topic: SegmentFeatures plus the customer's current segment.

    ``forget``: the customer was deleted; the segmenter drops it from ``current``.

    >>> import datetime as dt
    >>> ts = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    >>> FeaturesEvent(customer_id="c1", features={"level_kwh": 3.0}, ts=ts).current is None
    True
    """

    current: int | None = None
    forget: bool = False
