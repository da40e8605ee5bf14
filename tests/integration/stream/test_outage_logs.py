"""A Kafka outage does not flood the worker's log (issue #10 item 13): aiokafka logs every failed
connection attempt (about 250 ERROR lines a second before); the worker lets one line per cause
through per MW_LOG_REPEAT_INTERVAL_S, with the count of those held back, and keeps running.

The broker is a private one (``private_kafka``), killed with SIGKILL; the shared stack is untouched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from meterwatch.keys import Keys
from meterwatch.settings import Settings

from ..conftest import PrivateKafka, WarningLines
from .conftest import customer, daily_readings, publish, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 25.0
INTERVAL_S = 10.0


async def test_a_kafka_outage_gives_one_log_line_per_cause_and_the_worker_lives_on(
    mw_settings: Settings,
    worker_factory: Any,
    private_kafka: PrivateKafka,
    warning_lines: WarningLines,
    redis_client: Any,
) -> None:
    broker = private_kafka.start()
    s = mw_settings.model_copy(
        update={"kafka_bootstrap": broker.bootstrap, "log_repeat_interval_s": INTERVAL_S}
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        w = worker_factory(s)  # creates its topics on the private broker
        await publish(producer, s.topic_customers, [("c-out", customer("c-out", ["m-out"]))])
        readings = daily_readings("m-out", dt.date(2024, 3, 1), 2, 8.0)
        await publish(producer, s.topic_readings, [(r["meter_id"], r) for r in readings])
    finally:
        await producer.stop()
    key = Keys(s.redis_prefix).state("c-out")
    await wait_for(lambda: redis_client.exists(key), 120, "the worker's first state in the read model")

    offset = w.log_path.stat().st_size
    broker.kill9()
    down_at = time.monotonic()
    await asyncio.sleep(OUTAGE_S)  # the outage itself: nothing to poll for
    outage_s = time.monotonic() - down_at
    lines = warning_lines(w.log_path, offset)

    assert w.proc.poll() is None, w.log_text()[-3000:]  # the outage does not end the worker
    per_cause = 2 + int(outage_s // INTERVAL_S)
    assert lines, w.log_text()[-3000:]  # the outage is reported
    assert max(lines.values()) <= per_cause, (outage_s, lines.most_common(5))
    assert sum(lines.values()) <= 12 * per_cause, (outage_s, lines.most_common(10))
