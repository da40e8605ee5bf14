"""Decoding of raw Kafka input and building of dead letters.

Nothing here touches Kafka: these are pure functions that turn the bytes of one
message into a validated model or into a :class:`DeadLetterError` that says why
not. The agents call them and publish the dead letters.

>>> r = decode_reading(b'{"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": 0.5}')
>>> r.meter_id, r.kwh
('m1', 0.5)
>>> decode_reading(b'{"meter_id": "m1"').code
'invalid_json'
>>> e = decode_reading(b'{"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": -1}')
>>> e.code, e.field
('schema', 'kwh')
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meterwatch.contracts import (
    MAX_READING_BYTES,
    CustomerRecord,
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    HistoryRow,
    MeterReading,
)

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "decode_customer",
    "decode_history",
    "decode_reading",
    "make_dead_letter",
    "raw_text",
]


def _first_error(exc: ValidationError) -> DeadLetterError:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return DeadLetterError(code="schema", message=str(exc))
    first = errors[0]
    if first["type"] in ("json_invalid", "json_type"):
        return DeadLetterError(code="invalid_json", message=f"not valid JSON: {first['msg']}")
    loc = ".".join(str(p) for p in first["loc"]) or None
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "model_type" or first["type"] == "model_attributes_type":
        return DeadLetterError(code="schema", message="expected a JSON object" + more, field=loc)
    return DeadLetterError(code="schema", message=f"{first['msg']}{more}", field=loc)


def _decode(model: type[M], raw: bytes | None, max_bytes: int) -> M | DeadLetterError:
    if raw is None:
        return DeadLetterError(code="empty", message="message has no value (null / tombstone)")
    if len(raw) > max_bytes:
        return DeadLetterError(
            code="too_large", message=f"message is {len(raw)} bytes; the limit is {max_bytes}"
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return _first_error(exc)
    except (UnicodeDecodeError, ValueError) as exc:  # defensive: never let input crash a worker
        return DeadLetterError(code="invalid_json", message=str(exc)[:200])


def decode_reading(raw: bytes | None, max_bytes: int = MAX_READING_BYTES) -> MeterReading | DeadLetterError:
    """One `meter-readings` value -> MeterReading, or the reason it is rejected.

    >>> decode_reading(None).code
    'empty'
    >>> decode_reading(b"x" * 70000).code
    'too_large'
    >>> decode_reading(b"[1, 2]").code
    'schema'
    >>> e = decode_reading(b'{"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00"}')
    >>> e.code, "exactly one of" in e.message
    ('schema', True)
    >>> decode_reading(b'{"meter_id": "m1", "ts": "2024-01-01T00:30:00", "kwh": 1}').field
    'ts'
    >>> decode_reading(b'\\xff\\xfe').code
    'invalid_json'
    """
    return _decode(MeterReading, raw, max_bytes)


def decode_customer(raw: bytes, max_bytes: int = 1024 * 1024) -> CustomerRecord | DeadLetterError:
    """One `customers` value (not a tombstone) -> CustomerRecord, or the reason it is rejected.

    >>> decode_customer(b'{"customer_id": "c1", "meter_ids": ["m1"]}').meter_ids
    ['m1']
    >>> decode_customer(b'{"customer_id": "c1", "phone": "12345"}').field
    'phone'
    """
    return _decode(CustomerRecord, raw, max_bytes)


def decode_history(raw: bytes | None, max_bytes: int = MAX_READING_BYTES) -> HistoryRow | DeadLetterError:
    """One history-topic value -> HistoryRow, or the reason it is rejected.

    >>> decode_history(b'{"customer_id": "c1", "day": "2024-01-02", "kwh": 7.5}').kwh
    7.5
    >>> decode_history(b'{"customer_id": "c1", "kwh": 7.5}').code
    'schema'
    """
    return _decode(HistoryRow, raw, max_bytes)


def raw_text(raw: bytes | None) -> tuple[str, str]:
    """The original bytes as (text, "text") when they are UTF-8, else (base64, "base64").

    >>> raw_text(b'{"a": 1}')
    ('{"a": 1}', 'text')
    >>> raw_text(b'\\xff')
    ('/w==', 'base64')
    >>> raw_text(None)
    ('', 'text')
    """
    if raw is None:
        return "", "text"
    try:
        return raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def make_dead_letter(
    error: DeadLetterError,
    raw: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    received_at: dt.datetime | None = None,
) -> DeadLetter:
    """The DLQ record for one rejected message (the raw bytes are kept whole).

    >>> err = DeadLetterError(code="invalid_json", message="bad")
    >>> dl = make_dead_letter(err, b"{", "meter-readings", 2, 41)
    >>> dl.source.partition, dl.source.offset, dl.raw, dl.raw_encoding
    (2, 41, '{', 'text')
    """
    text, enc = raw_text(raw)
    return DeadLetter(
        error=error,
        received_at=received_at or dt.datetime.now(dt.UTC),
        source=DeadLetterSource(topic=topic, partition=partition, offset=offset),
        raw=text,
        raw_encoding="base64" if enc == "base64" else "text",
    )
