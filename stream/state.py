"""What the worker keeps per customer, typed and versioned.

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
=====  ==========================================================================

>>> st = CustomerState("c1")
>>> st.features_day, st.source_offsets = 19800, {0: 41}
>>> raw = encode_customer(st)
>>> raw
b'{"v":2,"p":null,"s":null,"f":19800,"o":{"0":41}}'
>>> back = CustomerState("c1"); decode_customer(back, raw); back.features_day, back.source_offsets
(19800, {0: 41})
>>> old = CustomerState("c1"); decode_customer(old, b'{"p":null,"s":null,"f":-1,"q":["x"]}')
>>> old.pending
['x']
"""

from __future__ import annotations

from typing import Any

import orjson

from baselines.customer import CustomerConfig
from baselines.profile import Profile
from meterwatch.contracts import CustomerRecord, SegmentRef

__all__ = [
    "STATE_VERSION",
    "CustomerState",
    "UnreadableState",
    "baseline_days",
    "decode_customer",
    "encode_customer",
]

STATE_VERSION = 2
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


class UnreadableState(ValueError):
    """A stored value this code cannot read (unknown version, corrupt profile)."""


def baseline_days(profile: Profile) -> int:
    """How many days the profile's baseline rests on (the segmenter waits for a week of them).

    The one place the worker reads this figure from the domain.

    >>> baseline_days(Profile.new("c1"))
    0
    """
    return int(profile.base_n)


class CustomerState:
    """One customer's decoded state, cached between batches on its partition."""

    __slots__ = (
        "config",
        "customer_id",
        "features_day",
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
    try:
        st.profile = Profile.from_dict(d["p"]) if d.get("p") is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise UnreadableState(f"stored profile unreadable: {type(exc).__name__}: {exc}") from None
