"""BatchProducer on the real broker: ``flush`` returns only once the caller's records are delivered.

The race this pins: agent A adds records, agent B's flush takes them (it swaps
the whole pending buffer) and is still handing them to aiokafka when A calls
``flush``. A must not return (and acknowledge its events, letting Faust commit
their offsets) before its records are delivered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from meterwatch.settings import Settings
from stream.produce import BatchProducer, DeliveryFailed

pytestmark = [pytest.mark.integration]


async def test_flush_waits_for_records_a_concurrent_flush_took(
    mw_settings: Settings, kafka_consume: Any
) -> None:
    from aiokafka import AIOKafkaProducer

    topic = mw_settings.topic_alerts  # any topic of this test's own set
    producer = AIOKafkaProducer(bootstrap_servers=mw_settings.kafka_bootstrap, linger_ms=50)
    await producer.start()
    try:
        out = BatchProducer(producer)
        out.mark_started()
        for i in range(2000):
            out.add(topic, 0, f"a{i}".encode(), b"x" * 200)
        first = asyncio.ensure_future(out.flush())  # "agent B": takes everything pending
        await asyncio.sleep(0)
        assert len(out) == 0, "the first flush took the pending records"
        await out.flush()  # "agent A": nothing pending of its own any more
        # everything the other flush took was handed over, and the broker acknowledged it
        assert out.records == 2000, (
            "flush returned while the records it depends on were still being handed over"
        )
        assert out.undelivered() == 0, "flush returned before the records it depends on were delivered"
        await first
        recs = await kafka_consume(topic, 2000, timeout_s=10)
        assert len(recs) == 2000
        assert [r.key for r in recs[:3]] == [b"a0", b"a1", b"a2"]
    finally:
        await producer.stop()


async def test_a_batch_the_broker_refuses_is_a_delivery_failure(mw_settings: Settings) -> None:
    from aiokafka import AIOKafkaProducer

    # the broker's default message.max.bytes is ~1 MB; the client lets a 3 MB batch through
    producer = AIOKafkaProducer(
        bootstrap_servers=mw_settings.kafka_bootstrap, max_batch_size=4_000_000, max_request_size=8_000_000
    )
    await producer.start()
    try:
        out = BatchProducer(producer)
        out.mark_started()
        out.add(mw_settings.topic_alerts, 0, b"big", b"y" * 3_000_000)
        with pytest.raises(DeliveryFailed, match="not delivered"):
            await out.flush()
    finally:
        await producer.stop()
