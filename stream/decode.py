"""Decoding of raw Kafka input.

Nothing here touches Kafka: these are pure functions that turn the bytes of one
message into a validated model or into a :class:`DeadLetterError` that says why
not. The stages call them and publish the dead letters (stream/deadletters.py).

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

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meterwatch.contracts import (
    MAX_READING_BYTES,
    CustomerRecord,
    DeadLetterError,
    HistoryRow,
    MeterReading,
)

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "decode_customer",
    "decode_history",
    "decode_reading",
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
