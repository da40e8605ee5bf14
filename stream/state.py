"""What the worker keeps per customer and per partition, typed and versioned.

The `profiles` table holds one value per customer (key: customer_id), JSON:

=====  ==========================================================================
key    meaning
=====  ==========================================================================
``v``  the version of this shape (2); a value without ``v`` is version 1 (the
       shape before versioning: same keys, no ``w``) and is read as such
``p``  the domain profile (``Profile.to_dict()``, itself versioned) or null
``s``  the segment assignment (``SegmentRef``) or null
``f``  the data day (epoch days) of the last features sent to the segmenter
``q``  held inputs (envelope JSON) that wait for the customer's registry record
``o``  per `meter-readings` partition: the highest source offset applied
``w``  what the customer's last write added to its partition's counters:
       ``[by-customer offset of that batch, readings, duplicates]``
=====  ==========================================================================

and, per partition, one counters value under :data:`COUNTERS_KEY` (not UTF-8, so
never a customer id): ``{"v": 1, "o": offset, "n": readings, "d": duplicates}``.

Why ``w``: the partition counters and the customer values of one batch are
written together, but a kill -9 can land the customer values without the
counters. Those customers' readings are then redelivered and recognised as
already applied, so they would never be counted. The counters carry the offset
of their batch: a customer loaded later whose ``w`` is newer adds its ``w`` to
the counters (once). See :class:`PartitionCounters`.

>>> st = CustomerState("c1")
>>> st.features_day, st.source_offsets = 19800, {0: 41}
>>> raw = encode_customer(st)
>>> raw
b'{"v":2,"p":null,"s":null,"f":19800,"o":{"0":41}}'
>>> back = CustomerState("c1"); decode_customer(back, raw); back.features_day, back.source_offsets
(19800, {0: 41})
>>> old = CustomerState("c1"); decode_customer(old, b'{"p":null,"s":null,"f":-1,"q":["x"]}')
>>> old.pending, old.last_write is None
(['x'], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from baselines.customer import CustomerConfig
from baselines.profile import Profile
from meterwatch.contracts import CustomerRecord, SegmentRef

__all__ = [
    "COUNTERS_KEY",
    "STATE_VERSION",
    "CustomerState",
    "LastWrite",
    "PartitionCounters",
    "UnreadableState",
    "baseline_days",
    "decode_customer",
    "encode_customer",
]

STATE_VERSION = 2
COUNTERS_KEY = b"\xff\xfecounters"  # invalid UTF-8: no customer id can collide with it
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


class UnreadableState(ValueError):
    """A stored value this code cannot read (unknown version, corrupt profile)."""


def baseline_days(profile: Profile) -> int:
    """How many days the profile's baseline rests on (the segmenter waits for a week of them).

    The one place the worker reads this figure from the domain.

    >>> baseline_days(Profile.new("c1"))
    0
    """
    return profile.baseline_days


@dataclass(slots=True, frozen=True)
class LastWrite:
    """What one stored write of a customer added to its partition's counters."""

    offset: int  # by-customer offset that ends the batch of the write
    readings: int
    duplicates: int


class CustomerState:
    """One customer's decoded state, cached between batches on its partition."""

    __slots__ = (
        "batch_duplicates",
        "batch_readings",
        "config",
        "customer_id",
        "features_day",
        "last_write",
        "pending",
        "profile",
        "record",
        "segment",
        "source_offsets",
    )

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.record: CustomerRecord | None = None
        self.config: CustomerConfig | None = None
        self.profile: Profile | None = None
        self.segment: SegmentRef | None = None
        self.features_day = -1
        # inputs that reached the customer's partition before its registry record did (the
        # meter index is global and can be ahead of this partition): applied on its arrival
        self.pending: list[str] = []
        # per partition of meter-readings: the highest source offset applied to this customer.
        # Stored with the profile (same value), so after a crash the redelivered readings are
        # recognised as such, also those older than the domain's late window.
        self.source_offsets: dict[int, int] = {}
        self.last_write: LastWrite | None = None
        # counted in the batch being processed; stored (as ``last_write``) with the value
        self.batch_readings = 0
        self.batch_duplicates = 0


def encode_customer(st: CustomerState) -> bytes:
    """The table value of ``st`` (version 2)."""
    value: dict[str, Any] = {
        "v": STATE_VERSION,
        "p": st.profile.to_dict() if st.profile is not None else None,
        "s": st.segment.model_dump() if st.segment is not None else None,
        "f": st.features_day,
    }
    if st.pending:
        value["q"] = st.pending
    if st.source_offsets:
        value["o"] = st.source_offsets
    if st.last_write is not None:
        w = st.last_write
        value["w"] = [w.offset, w.readings, w.duplicates]
    return orjson.dumps(value, option=_JSON_OPTS)


def decode_customer(st: CustomerState, raw: bytes) -> None:
    """Fill ``st`` from a stored value of version 1 or 2; ``UnreadableState`` otherwise.

    >>> decode_customer(CustomerState("c1"), b'{"v": 9}')
    Traceback (most recent call last):
    ...
    stream.state.UnreadableState: stored customer value of version 9 (this code reads 1 and 2)
    """
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UnreadableState(f"stored customer value is not JSON: {exc}") from None
    version = d.get("v", 1)
    if version not in (1, 2):
        raise UnreadableState(f"stored customer value of version {version} (this code reads 1 and 2)")
    st.segment = SegmentRef.model_validate(d["s"]) if d.get("s") else None
    st.features_day = int(d.get("f", -1))
    st.pending = [str(x) for x in d.get("q", ())]
    st.source_offsets = {int(k): int(v) for k, v in d.get("o", {}).items()}
    w = d.get("w")
    st.last_write = LastWrite(int(w[0]), int(w[1]), int(w[2])) if w else None
    try:
        st.profile = Profile.from_dict(d["p"]) if d.get("p") is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise UnreadableState(f"stored profile unreadable: {type(exc).__name__}: {exc}") from None


@dataclass(slots=True)
class PartitionCounters:
    """Counters of one by-customer partition, stored in its table partition (exact after a crash).

    ``offset`` is the by-customer offset that ends the batch these counts include;
    ``changed``: not stored yet.

    >>> c = PartitionCounters(); c.add(5, 0); c.offset = 99
    >>> PartitionCounters.decode(c.encode())
    PartitionCounters(offset=99, readings=5, duplicates=0, changed=False)
    >>> c.recover(LastWrite(offset=120, readings=3, duplicates=1)), c.readings, c.duplicates
    (True, 8, 1)
    >>> c.recover(LastWrite(offset=80, readings=3, duplicates=0)), c.readings
    (False, 8)
    >>> c.as_metrics()
    {'readings_processed': 8, 'duplicates:reading': 1}
    """

    offset: int = -1
    readings: int = 0
    duplicates: int = 0
    changed: bool = False

    def encode(self) -> bytes:
        return orjson.dumps({"v": 1, "o": self.offset, "n": self.readings, "d": self.duplicates})

    @classmethod
    def decode(cls, raw: bytes | None) -> PartitionCounters:
        if raw is None:
            return cls()
        d = orjson.loads(raw)
        return cls(offset=int(d["o"]), readings=int(d["n"]), duplicates=int(d["d"]))

    def add(self, readings: int, duplicates: int) -> None:
        if readings or duplicates:
            self.readings += readings
            self.duplicates += duplicates
            self.changed = True

    def recover(self, w: LastWrite | None) -> bool:
        """Count a customer write that landed after the last stored counters did (a crash between)."""
        if w is None or w.offset <= self.offset:
            return False
        self.add(w.readings, w.duplicates)
        self.changed = True  # stored with this batch's offset: the write is counted from now on
        return True

    def as_metrics(self) -> dict[str, int]:
        """The pipeline metrics these counters are the truth of (Redis ``metrics:worker``)."""
        return {"readings_processed": self.readings, "duplicates:reading": self.duplicates}
