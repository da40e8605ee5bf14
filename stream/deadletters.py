"""Dead letters, in one place: the reasons, the record, and how it is sent.

Every input the worker rejects becomes one `DeadLetter` on the DLQ topic with a
named ``error.code`` (the table below and docs/stream.md), the original bytes and
where they came from. Dead letters are batched with the other outputs of the
batch, so they are delivered before the source offset is committed.

==========================  ====================================================
code                        meaning
==========================  ====================================================
``invalid_json``            not JSON (or not UTF-8)
``too_large``               over 64 KiB
``empty``                   null value (tombstone) on a topic that has none
``schema``                  JSON that is not a valid message (``field`` names the
                            first offending field; strict types, see contracts)
``ts_in_future``            ``ts`` later than now + ``MW_READING_MAX_FUTURE_S``
``ts_too_old``              ``ts`` before ``MW_READING_MIN_TS`` or older than
                            ``MW_READING_MAX_AGE_DAYS``
``kwh_implausible``         more kWh than the meter's rating (max kW) allows in
                            the interval (also history rows, per day / cycle)
``unknown_meter``           no registered customer owns the meter
``unknown_customer``        ``customer_id`` not in the registry
``meter_customer_mismatch`` ``customer_id`` differs from the meter's registered owner
``conflicting_duplicate``   a second, different value for a slot already booked
                            (the message carries both values)
``baselines.readings.*``    the domain's other rejections (e.g. ``too_late``,
                            ``register_backwards``); the code is the domain's
``processing_error``        a bug, with the exception, instead of a crash
==========================  ====================================================

>>> from meterwatch.contracts import MeterReading
>>> r = MeterReading.model_validate({"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": 1.0})
>>> unknown_error(r).code, unknown_error(r.model_copy(update={"customer_id": "c9"})).code
('unknown_meter', 'unknown_customer')
>>> dl = make_dead_letter(DeadLetterError(code="invalid_json", message="bad"), b"{", "meter-readings", 2, 41)
>>> dl.source.partition, dl.source.offset, dl.raw, dl.raw_encoding
(2, 41, '{', 'text')
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

from meterwatch.contracts import DeadLetter, DeadLetterError, DeadLetterSource, MeterReading, Reason
from stream.envelope import Envelope, Source
from stream.metrics import WorkerMetrics
from stream.produce import Outputs

__all__ = [
    "CONFLICTING_DUPLICATE",
    "DeadLetters",
    "domain_error",
    "make_dead_letter",
    "mismatch_error",
    "raw_text",
    "unknown_error",
]

CONFLICTING_DUPLICATE = "conflicting_duplicate"


def raw_text(raw: bytes | None) -> tuple[str, str]:
    """The original bytes as (text, "text") when they are UTF-8, else (base64, "base64").

    >>> raw_text(b'{"a": 1}'), raw_text(b'\\xff'), raw_text(None)
    (('{"a": 1}', 'text'), ('/w==', 'base64'), ('', 'text'))
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
    """The DLQ record for one rejected message (the raw bytes are kept whole)."""
    text, enc = raw_text(raw)
    return DeadLetter(
        error=error,
        received_at=received_at or dt.datetime.now(dt.UTC),
        source=DeadLetterSource(topic=topic, partition=partition, offset=offset),
        raw=text,
        raw_encoding="base64" if enc == "base64" else "text",
    )


def unknown_error(r: MeterReading) -> DeadLetterError:
    """Why a reading cannot be placed: its customer or its meter is not in the registry."""
    if r.customer_id is not None:
        return DeadLetterError(
            code="unknown_customer",
            message=f"customer {r.customer_id!r} is not in the registry",
            field="customer_id",
        )
    return DeadLetterError(
        code="unknown_meter",
        message=f"meter {r.meter_id!r} belongs to no customer in the registry",
        field="meter_id",
    )


def mismatch_error(r: MeterReading, owner: str) -> DeadLetterError:
    """The reading names another customer than the meter's registered owner."""
    return DeadLetterError(
        code="meter_customer_mismatch",
        message=f"meter {r.meter_id!r} belongs to customer {owner!r}, the reading names {r.customer_id!r}",
        field="customer_id",
    )


def domain_error(reason: Reason) -> DeadLetterError:
    """A domain rejection as a dead-letter error; its numbers (e.g. both values) go in the message.

    >>> domain_error(Reason(code="baselines.readings.too_late", message="too old", numbers={"day": "x"}))
    DeadLetterError(code='baselines.readings.too_late', message='too old (day=x)', field=None)
    >>> e = domain_error(Reason(code="baselines.readings.conflicting_duplicate", message="slot taken",
    ...                         numbers={"stored_kwh": 0.25, "new_kwh": 0.4}))
    >>> e.code, e.message
    ('conflicting_duplicate', 'slot taken (stored_kwh=0.25, new_kwh=0.4)')
    """
    code = reason.code
    if code.rsplit(".", 1)[-1] == CONFLICTING_DUPLICATE:
        code = CONFLICTING_DUPLICATE
    message = reason.message or reason.code
    if reason.numbers:
        message += " (" + ", ".join(f"{k}={v}" for k, v in reason.numbers.items()) + ")"
    return DeadLetterError(code=code, message=message)


class DeadLetters:
    """Sends dead letters through the batch outputs and counts them (``dlq{code}``)."""

    def __init__(
        self,
        out: Outputs,
        metrics: WorkerMetrics,
        topic: str,
        by_customer_topic: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.out = out
        self.metrics = metrics
        self.topic = topic
        self.by_customer_topic = by_customer_topic
        self.clock = clock
        self.partitions = 1  # of the DLQ topic; looked up at start

    def send(
        self, error: DeadLetterError, raw: bytes | None, topic: str, partition: int, offset: int
    ) -> None:
        """Dead-letter one message, identified by where it came from."""
        dl = make_dead_letter(error, raw, topic, partition, offset, received_at=self.clock())
        self.out.add(self.topic, offset % self.partitions, None, dl.model_dump_json().encode())
        self.metrics.inc_labelled("dlq", error.code)

    def send_envelope(self, env: Envelope, error: DeadLetterError, raw: bytes | None = None) -> None:
        """Dead-letter what an envelope carries (or ``raw``), with the source of the original message."""
        src = env.src or Source(t=self.by_customer_topic, p=-1, o=-1)
        if raw is not None:
            pass
        elif env.raw is not None:
            raw = env.raw.encode()
        elif env.reading is not None:
            raw = env.reading.model_dump_json(exclude_none=True).encode()
        else:
            raw = env.dumps()
        self.send(error, raw, src.t, src.p, src.o)

    def processing_error(self, exc: BaseException) -> DeadLetterError:
        """A failure of our own code on an input, as a dead-letter error (never a crash)."""
        return DeadLetterError(code="processing_error", message=f"{type(exc).__name__}: {exc}"[:300])
