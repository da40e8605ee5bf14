"""One by-customer message per partition and ingest batch (a measured performance departure).

Why: the profile stage is a Faust agent, and Faust's per-event machinery
(consumer, conductor, channel, stream, acknowledgement) costs tens of
microseconds per message, more than the domain fold of a reading. The ingest
stage therefore sends the readings of one batch that belong to one partition of
``<app>-by-customer`` as ONE message, kind ``readings``, with at most
:data:`READINGS_PER_MESSAGE` items ``[customer_id, source partition, source
offset, reading]``; the validated original JSON of each reading is spliced in
as is (no re-encoding). The profile stage pays Faust's per-event cost per group
(measured: 4,500-5,300 -> 9,500-10,000 readings/s, README "Benchmark").

>>> body = encode_group("meter-readings", [item("c1", 0, 7, b'{"meter_id":"m1"}')])
>>> body
b'{"kind":"readings","t":"meter-readings","items":[["c1",0,7,{"meter_id":"m1"}]]}'
>>> is_group(body), decode_group(body)
(True, ('meter-readings', [['c1', 0, 7, {'meter_id': 'm1'}]]))
>>> decode_group(b'{"kind":"readings"}') is None
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

__all__ = ["READINGS_PER_MESSAGE", "decode_group", "encode_group", "encode_groups", "is_group", "item"]

READINGS_PER_MESSAGE = 1000  # ~0.2 MB per message, far below the broker's 1 MB limit
_HEAD = b'{"kind":"readings"'


def item(customer_id: str, partition: int, offset: int, raw: bytes) -> bytes:
    """One item: the customer, the reading's source partition/offset, and its original JSON."""
    return b"[%b,%d,%d,%b]" % (orjson.dumps(customer_id), partition, offset, raw)


def encode_group(topic: str, items: list[bytes]) -> bytes:
    """One ``readings`` message of ``items`` (all of one by-customer partition)."""
    return b'{"kind":"readings","t":%b,"items":[%b]}' % (orjson.dumps(topic), b",".join(items))


def encode_groups(topic: str, items: list[bytes]) -> Iterator[bytes]:
    """``items`` in messages of at most READINGS_PER_MESSAGE items."""
    for i in range(0, len(items), READINGS_PER_MESSAGE):
        yield encode_group(topic, items[i : i + READINGS_PER_MESSAGE])


def is_group(value: bytes | None) -> bool:
    """Whether a by-customer value is a readings group (the other kinds are envelopes)."""
    return value is not None and value.startswith(_HEAD)


def decode_group(value: bytes) -> tuple[str, list[Any]] | None:
    """(source topic, items) of a group, or None when it is not one."""
    try:
        group = orjson.loads(value)
        return str(group["t"]), list(group["items"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
