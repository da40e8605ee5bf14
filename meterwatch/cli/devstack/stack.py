"""The stack as a whole: ``up`` (idempotent), ``down`` (what it started), ``status``."""

from __future__ import annotations

import asyncio
import time

from meterwatch.cli.devstack.kafka import KAFKA_MAIN, kafka_status, promote_cds, start_kafka
from meterwatch.cli.devstack.paths import StackPaths, StackStatus
from meterwatch.cli.devstack.procs import locked, pid_alive, port_open, read_pid, run_async, stop_pid
from meterwatch.cli.devstack.redis import redis_status, start_redis
from meterwatch.settings import Settings


def up(settings: Settings, *, create_topics: bool = True) -> StackStatus:
    """Start (or reuse) Kafka and Redis and create the topics. Idempotent."""
    from meterwatch.topics import ensure_topics, list_topics

    paths = StackPaths.of(settings)
    with locked(paths):
        redis_st = start_redis(settings)
        kafka_st = start_kafka(settings)
    topics: list[str] | None = None
    if create_topics:
        run_async(lambda: ensure_topics(settings))
        topics = run_async(lambda: list_topics(settings))
    return StackStatus(kafka=kafka_st, redis=redis_st, topics=topics)


def down(settings: Settings, timeout_s: float = 60.0) -> StackStatus:
    """Stop the services this stack started; leaves no process behind."""
    paths = StackPaths.of(settings)
    with locked(paths):
        stopped_kafka = False
        for pidfile, marker in ((paths.kafka_pidfile, KAFKA_MAIN), (paths.redis_pidfile, "redis-server")):
            pid = read_pid(pidfile)
            if pid is not None and pid_alive(pid, marker):
                clean = stop_pid(pid, marker, timeout_s)
                if marker == KAFKA_MAIN:
                    stopped_kafka = True
                    promote_cds(paths, clean)
            pidfile.unlink(missing_ok=True)
        if stopped_kafka:  # the sockets close with the process; give the kernel a moment
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (
                port_open(settings.kafka_host, settings.kafka_port)
                or port_open(settings.kafka_host, settings.kafka_controller_port)
            ):
                time.sleep(0.1)
    return status(settings, with_topics=False)


def status(settings: Settings, *, with_topics: bool = True) -> StackStatus:
    from meterwatch.topics import list_topics

    paths = StackPaths.of(settings)
    kafka_st = kafka_status(settings, paths)
    topics: list[str] | None = None
    if with_topics and kafka_st.answering:
        try:
            topics = run_async(lambda: asyncio.wait_for(list_topics(settings), 15))
        except Exception:
            topics = None
    return StackStatus(kafka=kafka_st, redis=redis_status(settings, paths), topics=topics)
