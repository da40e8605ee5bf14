"""The per-customer daily archive: a fixed-width binary ring in one Redis string.

The worker writes one record when a customer's day becomes final (and for each
day of a history bootstrap); the API reads the whole string with one ``GET``
(10 KB) and decodes the days it needs. Format (version 1, little-endian):

* header, 8 bytes at offset 0: ``b"MWD1"``, ``uint16`` slot count (512), ``uint16``
  record size (20);
* 512 slots of 20 bytes at ``8 + (day_ordinal % 512) * 20``, each
  ``uint32 day ordinal`` (``date.toordinal()``; 0 = empty slot), then ``float32``
  ``kwh``, ``expected_kwh``, ``band_low``, ``band_high`` (NaN = unknown).

A slot is reused after 512 days (the new day overwrites it), so the archive
always holds the last 512 days that were written: 90 days of charts plus the
same days a year earlier, with room to spare. A reader trusts a slot only when
its stored ordinal is the day asked for. Writes are ``SETRANGE`` of the header
and the record: idempotent, so a redelivered day rewrites the same bytes.
float32 keeps ~7 significant digits; values are rounded to 3 decimals on read.

>>> import datetime as dt
>>> rec = DayRecord(dt.date(2025, 3, 1).toordinal(), 12.5, 10.0, 4.0, 16.0)
>>> blob = apply_writes(b"", writes([rec]))
>>> len(blob) == slot_offset(rec.day) + RECORD_SIZE
True
>>> decode(blob)[rec.day]
DayRecord(day=739311, kwh=12.5, expected_kwh=10.0, band_low=4.0, band_high=16.0)
>>> decode(b"")
{}
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import NamedTuple

MAGIC = b"MWD1"
SLOTS = 512
_REC = struct.Struct("<Iffff")
RECORD_SIZE = _REC.size  # 20
_HEAD = struct.Struct("<4sHH")
HEADER = _HEAD.pack(MAGIC, SLOTS, RECORD_SIZE)
HEADER_SIZE = _HEAD.size  # 8
ARCHIVE_SIZE = HEADER_SIZE + SLOTS * RECORD_SIZE
_NAN = float("nan")


class DayRecord(NamedTuple):
    """One final day: kWh (None: missing or partial) and the baseline's expectation and band then."""

    day: int  # date ordinal
    kwh: float | None
    expected_kwh: float | None = None
    band_low: float | None = None
    band_high: float | None = None


def slot_offset(day: int) -> int:
    """Byte offset of a day's record.

    >>> slot_offset(512), slot_offset(513)
    (8, 28)
    """
    return HEADER_SIZE + (day % SLOTS) * RECORD_SIZE


def _f(x: float | None) -> float:
    return _NAN if x is None or not math.isfinite(x) else float(x)


def _opt(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(x, 3)


def encode(rec: DayRecord) -> bytes:
    """The 20 bytes of one record.

    >>> len(encode(DayRecord(1, None)))
    20
    """
    return _REC.pack(rec.day, _f(rec.kwh), _f(rec.expected_kwh), _f(rec.band_low), _f(rec.band_high))


def writes(records: Iterable[DayRecord]) -> list[tuple[int, bytes]]:
    """``(offset, bytes)`` pairs to ``SETRANGE``: the header, then one per record (the last per slot wins).

    >>> [off for off, _ in writes([DayRecord(0, 1.0), DayRecord(512, 2.0)])]
    [0, 8]
    """
    by_slot: dict[int, bytes] = {}
    for rec in records:
        if rec.day > 0:
            by_slot[slot_offset(rec.day)] = encode(rec)
    if not by_slot:
        return []
    return [(0, HEADER), *sorted(by_slot.items())]


def apply_writes(blob: bytes, ws: Iterable[tuple[int, bytes]]) -> bytes:
    """What Redis ``SETRANGE`` does to ``blob`` (zero padding); for tests and tools.

    >>> apply_writes(b"ab", [(4, b"x")])
    b'ab\\x00\\x00x'
    """
    buf = bytearray(blob)
    for off, data in ws:
        if len(buf) < off + len(data):
            buf.extend(bytes(1) * (off + len(data) - len(buf)))
        buf[off : off + len(data)] = data
    return bytes(buf)


def decode(blob: bytes | None) -> dict[int, DayRecord]:
    """Every stored day of an archive, by ordinal. An unknown header gives ``{}`` (never raises).

    >>> decode(b"XXXX" + bytes(20))
    {}
    """
    if not blob or len(blob) < HEADER_SIZE:
        return {}
    magic, slots, size = _HEAD.unpack_from(blob, 0)
    if magic != MAGIC or slots != SLOTS or size != RECORD_SIZE:
        return {}
    out: dict[int, DayRecord] = {}
    end = min(len(blob), ARCHIVE_SIZE)
    for off in range(HEADER_SIZE, end - RECORD_SIZE + 1, RECORD_SIZE):
        day, kwh, exp, lo, hi = _REC.unpack_from(blob, off)
        if day == 0 or slot_offset(day) != off:
            continue
        out[day] = DayRecord(day, _opt(kwh), _opt(exp), _opt(lo), _opt(hi))
    return out
