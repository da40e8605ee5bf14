"""Registry updates from the workbench: "mark an occupant change".

Kafka stays the source of truth: the API publishes the customer's registry
record (as the worker last mirrored it to Redis) with ``occupant_since`` set to
the ``customers`` topic, keyed by customer id; the worker applies it like any
registry update and the baseline restart itself is issue #15's. A record
published meanwhile by the billing system and not yet mirrored would be
overwritten by this copy (last write wins on the compacted topic): the page
shows the record it sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiokafka import AIOKafkaProducer

from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import CustomerRecord
from meterwatch.settings import Settings


class RegistryPublisher:
    """A lazily started producer of registry updates (one per API process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                p = AIOKafkaProducer(
                    **kafka_client_kwargs(self.settings),  # address and SASL/TLS, as every client
                    acks="all",
                    client_id="meterwatch-api-registry",
                    request_timeout_ms=10_000,
                )
                await p.start()
                self._producer = p
            return self._producer

    async def occupant_change(self, record: CustomerRecord, since: dt.date) -> CustomerRecord:
        """Publish ``record`` with ``occupant_since`` = ``since``; returns what was sent."""
        updated = record.model_copy(update={"occupant_since": since})
        producer = await self._get()
        await producer.send_and_wait(
            self.settings.topic_customers,
            key=record.customer_id.encode(),
            value=updated.model_dump_json(exclude_none=True).encode(),
        )
        return updated

    async def aclose(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
