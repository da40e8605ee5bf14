"""Shared fixtures: the real local stack (Kafka + Redis) and per-test isolation on it.

* ``stack`` (session): makes sure the local Kafka and Redis run. It reuses a
  stack whose ports answer, otherwise starts one with ``meterwatch.cli.devstack.up``
  (the same code as ``meterwatch dev up``). A stack that cannot be started fails
  every test that needs it, with the reason; it is never skipped (``CI=true``
  additionally stops the session at once). The fixture does not stop the stack
  (``meterwatch dev down`` / ``.ci/run`` do).
* ``mw_settings``: a ``Settings`` copy with unique topic names (``t<hex>-...``),
  a unique ``redis_prefix`` (``mwt<hex>:``), a unique ``app_id`` and
  ``notifier_group_id`` (so Faust's groups and internal topics are private too) and a
  ``data_dir`` under ``tmp_path``; the topics exist when the test starts, and its
  topics, consumer groups and Redis keys are removed afterwards
  (``meterwatch.cli.devstack.isolation``).
* ``mw_settings_factory``: ``make()`` returns another such isolated ``Settings``.
* ``redis_client``: a ``redis.asyncio.Redis`` on the stack (decode_responses=False).
* ``kafka_producer``: a started ``aiokafka.AIOKafkaProducer`` on the stack.
* ``kafka_consume``: ``await kafka_consume(topic, n, timeout_s=20.0)`` reads ``n``
  records from the beginning of ``topic`` (fewer if the timeout expires).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from meterwatch.cli.devstack import StackError, port_open, run_async
from meterwatch.cli.devstack import up as stack_up
from meterwatch.cli.devstack.isolation import cleanup, drop_prefixed, prefix_of
from meterwatch.cli.devstack.isolation import isolated_settings as _isolated
from meterwatch.settings import Settings
from meterwatch.topics import ensure_topics, list_topics


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _stack_failure(message: str) -> None:
    text = (
        f"the local stack (Kafka + Redis) is not available: {message}\n"
        "Start it with `meterwatch dev up` (see README); integration tests are never skipped."
    )
    if _in_ci():
        pytest.exit(text, returncode=1)
    pytest.fail(text, pytrace=False)


#: topic prefixes handed out in this session; swept once more at the end of the session, when
#: every worker a test started is gone (a worker still running at a test's teardown may recreate
#: its topics through auto-creation).
_SESSION_PREFIXES: set[str] = set()


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The base Settings of a running local stack (started here if needed)."""
    settings = Settings()
    problem = ""
    kafka_up = port_open(settings.kafka_host, settings.kafka_port)
    redis_up = port_open(settings.redis_host, settings.redis_port)
    if not (kafka_up and redis_up):
        try:
            stack_up(settings, create_topics=False)
        except StackError as exc:
            problem = str(exc)
    if not problem:
        # both must really answer, not merely accept connections
        try:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
            try:
                client.ping()
            finally:
                client.close()
            run_async(lambda: list_topics(settings))  # proves the broker answers requests
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
    if problem:
        _stack_failure(problem)
    yield settings
    if _SESSION_PREFIXES:
        _drop_topics(settings, tuple(_SESSION_PREFIXES))


def isolated_settings(base: Settings, data_dir: os.PathLike[str] | str) -> Settings:
    """A copy of ``base`` with unique topics, consumer groups, Redis prefix and data dir."""
    settings = _isolated(base, data_dir)
    _SESSION_PREFIXES.add(prefix_of(settings))
    return settings


def _drop_topics(settings: Settings, prefixes: tuple[str, ...]) -> None:
    """Topics and consumer groups with these prefixes (best effort)."""
    try:
        run_async(lambda: drop_prefixed(settings, prefixes))
    except Exception:
        pass  # cleanup must not mask the tests' outcome


@pytest.fixture
def mw_settings(stack: Settings, tmp_path: Any) -> Iterator[Settings]:
    """Per-test Settings on the shared stack: own topics (created), Redis prefix and data dir."""
    settings = isolated_settings(stack, tmp_path / "mw-data")
    run_async(lambda: ensure_topics(settings))
    yield settings
    _cleanup(settings)


@pytest.fixture
def mw_settings_factory(stack: Settings, tmp_path: Any) -> Iterator[Callable[[], Settings]]:
    """Make more isolated Settings (topics created, cleaned up afterwards), e.g. for two apps."""
    made: list[Settings] = []

    def make() -> Settings:
        settings = isolated_settings(stack, tmp_path / f"mw-data-{len(made)}")
        run_async(lambda: ensure_topics(settings))
        made.append(settings)
        return settings

    yield make
    for settings in made:
        _cleanup(settings)


def _cleanup(settings: Settings) -> None:
    """Best effort: drop the test's topics (incl. Faust's internal ones), consumer groups and Redis keys."""
    cleanup(settings)


@pytest.fixture
async def redis_client(mw_settings: Settings) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(mw_settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def kafka_producer(mw_settings: Settings) -> AsyncIterator[Any]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=mw_settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
def kafka_consume(mw_settings: Settings) -> Callable[..., Awaitable[list[Any]]]:
    """``await kafka_consume(topic, n, timeout_s=20.0)``: up to ``n`` records from the start of ``topic``."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def consume(topic: str, n: int, timeout_s: float = 20.0) -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=mw_settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        records: list[Any] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(records) < n and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=n - len(records))
                for recs in batch.values():
                    records.extend(recs)
        finally:
            await consumer.stop()
        return records

    return consume
