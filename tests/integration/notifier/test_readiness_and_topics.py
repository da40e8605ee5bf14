"""Readiness follows the consumer's real state; the alerts topic is created or verified, never
auto-created; outages do not flood the logs (issue #10, items 13 and 14)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.logs import RepeatFilter
from meterwatch.settings import Settings
from meterwatch.topics import TopicSpec, create_topics, describe_topics

from ..conftest import PrivateKafka, WarningLines
from .conftest import make_alert, make_customer, notifier_settings, put_customers, run_notifier, wait_until
from .fakes import FakeGateway
from .procs import NotifierProcess

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _ready(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(f"{url}/readyz")


async def test_a_missing_alerts_topic_is_created_with_its_partitions_then_consumed(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis
) -> None:
    # a topic name that does not exist yet (the fixture's cleanup covers the prefix)
    s = notifier_settings(mw_settings, sms_gw, push_gw, topic_alerts=mw_settings.topic_alerts + "-late")
    await put_customers(redis, s, make_customer("late1"))
    async with run_notifier(s) as n:

        async def ready() -> bool:
            return (await n.client.get("/readyz")).status_code == 200

        await wait_until(ready, timeout=30)
        info = await describe_topics(s, [s.topic_alerts])
        assert info[s.topic_alerts].partitions == s.alerts_partitions  # not the broker default of 1
        await _produce(s.kafka_bootstrap, s.topic_alerts, make_alert("late1").to_json(), b"late1")
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)


async def test_an_alerts_topic_with_the_wrong_partition_count_is_reported_not_consumed(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, topic_alerts=mw_settings.topic_alerts + "-one")
    await create_topics(s, [TopicSpec(name=s.topic_alerts, partitions=1)])  # as auto-creation leaves it
    await put_customers(redis, s, make_customer("one1"))
    await _produce(s.kafka_bootstrap, s.topic_alerts, make_alert("one1").to_json(), b"one1")
    async with run_notifier(s) as n:

        async def reported() -> dict[str, Any] | None:
            r = await n.client.get("/readyz")
            body = r.json()
            # "not started yet" comes first while the consumer starts: wait for the verdict
            problem = str(body.get("problems", {}).get("kafka", ""))
            return body if r.status_code == 503 and "partition" in problem else None

        body = await wait_until(reported, timeout=20)
        msg = body["problems"]["kafka"]
        assert f"'{s.topic_alerts}' has 1 partition(s) but meterwatch expects {s.alerts_partitions}" in msg
        assert "MW_ALERTS_PARTITIONS" in msg and "--delete --topic" in msg
        assert body["checks"] == {"redis": True, "kafka": False}
    assert sms_gw.requests == []  # the topic was not consumed


@pytest.mark.slow
async def test_readiness_follows_a_kafka_outage_and_the_logs_stay_quiet(
    mw_settings: Settings,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    redis: Redis,
    tmp_path: Path,
    private_kafka: PrivateKafka,
    warning_lines: WarningLines,
) -> None:
    broker = private_kafka.start()
    s = notifier_settings(
        mw_settings, sms_gw, push_gw, kafka_bootstrap=broker.bootstrap, notifier_kafka_probe_s=1.0
    )
    await put_customers(redis, s, make_customer("o1"), make_customer("o2", phone="+8613800138002"))
    proc = NotifierProcess(s, tmp_path, "outage")
    try:
        proc.start()
        async with httpx.AsyncClient(timeout=10) as c:

            async def status() -> int:
                return (await _ready(c, proc.url)).status_code

            await wait_until(lambda: _is(status, 200), timeout=120, what="ready at start")
            # the notifier created the topic itself (the private broker never auto-creates)
            await _produce(broker.bootstrap, s.topic_alerts, make_alert("o1").to_json(), b"o1")
            assert await asyncio.to_thread(sms_gw.wait_requests, 1, 30)

            offset = proc.log.stat().st_size
            broker.kill9()
            down_at = time.monotonic()
            await wait_until(lambda: _is(status, 503), timeout=60, what="not ready in the outage")
            body = (await _ready(c, proc.url)).json()
            assert body["checks"]["kafka"] is False and "kafka" in body["problems"]["kafka"]
            # the outage goes on while the broker restarts (10-60 s on this machine)
            broker.start()
            await wait_until(lambda: _is(status, 200), timeout=180, what="ready after the outage")
            outage_s = time.monotonic() - down_at
            lines = warning_lines(proc.log, offset)
            await _produce(broker.bootstrap, s.topic_alerts, make_alert("o2").to_json(), b"o2")
            assert await asyncio.to_thread(sms_gw.wait_requests, 2, 30)
    finally:
        proc.stop()
    # one line per cause per MW_LOG_REPEAT_INTERVAL_S (30 s), whatever the client library does
    per_cause = 2 + int(outage_s // s.log_repeat_interval_s)
    assert lines and max(lines.values()) <= per_cause, (outage_s, lines.most_common(5))
    assert sum(lines.values()) <= 12 * per_cause, (outage_s, lines.most_common(10))


async def _is(probe: Callable[[], Awaitable[int]], want: int) -> bool:
    try:
        return bool(await probe() == want)
    except httpx.HTTPError:
        return False


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


async def test_redis_down_gives_one_warning_per_cause_not_a_flood(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, kafka_producer: AIOKafkaProducer
) -> None:
    """The notifier's own retry warnings through the filter the services install (meterwatch.logs)."""
    s = notifier_settings(mw_settings, sms_gw, push_gw, redis_url="redis://127.0.0.1:1/0")
    await kafka_producer.send_and_wait(s.topic_alerts, make_alert("rd1").to_json(), key=b"rd1")
    out = _Lines()
    out.addFilter(RepeatFilter(s.log_repeat_interval_s))
    root = logging.getLogger()
    root.addHandler(out)
    try:
        async with run_notifier(s) as n:
            consumer, dispatcher = n.app.state.consumer, n.app.state.dispatcher
            # both the consumer (an alert waits in Kafka) and the dispatcher keep retrying Redis
            await wait_until(
                lambda: consumer.redis_retries >= 5 and dispatcher.redis_failures >= 5,
                timeout=60,
                what="five retries each",
            )
    finally:
        root.removeHandler(out)
    waits = [x for x in out.lines if "alerts wait in Kafka" in x]
    polls = [x for x in out.lines if "dispatcher: redis unavailable" in x]
    assert len(waits) == 1 and len(polls) == 1, out.lines  # today: a line at every retry
