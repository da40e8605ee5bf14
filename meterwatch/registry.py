"""Publishing a registry record to the ``customers`` topic from a service (budget changes).

The ``customers`` topic is compacted and its last value per customer wins; the Ops API
(``PUT /v1/customers/{id}/budget``) and the notifier (an SMS reply "预算200") publish the
customer's full record with the changed field, so that Kafka stays the source of truth
and the worker applies it like any other registry change. The producer starts on first
use (a service that never changes a record never connects) and waits for every replica
(``acks=all``); :class:`PublishError` tells the caller it did not go through.

Last writer wins: a record published by the billing system afterwards replaces this one
(docs/money.md, "Budgets").
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import CustomerRecord
from meterwatch.settings import Settings


def with_budget(raw: bytes | str, amount: Decimal | None, currency: str) -> tuple[bytes, CustomerRecord]:
    """The registry document with its budget set (``amount`` None or 0: removed), the rest as it was.

    Fields this version does not know are kept (the record is the billing system's).

    >>> body, rec = with_budget('{"customer_id": "c1", "x_billing": 7}', Decimal("200"), "CNY")
    >>> json.loads(body)["budget"], json.loads(body)["x_billing"], rec.budget.currency
    ({'amount': 200.0, 'currency': 'CNY'}, 7, 'CNY')
    >>> json.loads(with_budget(body, None, "CNY")[0])
    {'customer_id': 'c1', 'x_billing': 7}
    """
    doc: dict[str, Any] = json.loads(raw)
    if amount:
        doc["budget"] = {"amount": float(amount), "currency": currency}
    else:
        doc.pop("budget", None)
    rec = CustomerRecord.model_validate(doc)
    return json.dumps(doc, ensure_ascii=False).encode(), rec


def with_fields(raw: bytes | str, fields: dict[str, Any]) -> tuple[bytes, CustomerRecord]:
    """The registry document with ``fields`` set (a ``None`` value removes the field), the rest as it
    was (fields this version does not know are kept); the record validated (ValidationError).

    >>> body, rec = with_fields('{"customer_id": "c1", "x_billing": 7}', {"occupant_since": "2024-03-10"})
    >>> json.loads(body), rec.occupant_since
    ({'customer_id': 'c1', 'x_billing': 7, 'occupant_since': '2024-03-10'}, datetime.date(2024, 3, 10))
    """
    doc: dict[str, Any] = json.loads(raw)
    for k, v in fields.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    rec = CustomerRecord.model_validate(doc)
    return json.dumps(doc, ensure_ascii=False).encode(), rec


class PublishError(RuntimeError):
    """The record could not be published (Kafka unreachable, timeout)."""


class RegistryPublisher:
    """``await publisher(key, value)`` sends one record to the customers topic (``acks=all``)."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.s = settings
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                p = AIOKafkaProducer(
                    **kafka_client_kwargs(self.s),  # address and SASL/TLS, as every client
                    acks="all",
                    linger_ms=0,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    client_id=f"{self.s.app_id}-registry-publisher",
                )
                try:
                    await asyncio.wait_for(p.start(), self.timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await p.stop()
                    raise PublishError(f"Kafka at {self.s.kafka_bootstrap} is not reachable: {exc}") from exc
                self._producer = p
            return self._producer

    async def __call__(self, key: bytes, value: bytes) -> None:
        producer = await self._started()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(self.s.topic_customers, key=key, value=value), self.timeout_s
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise PublishError(f"publishing to {self.s.topic_customers!r} failed: {exc}") from exc

    async def aclose(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
