"""`meterwatch worker` with Kafka down (issue #10 item 17): it waits with a one-line message instead
of a 35-line traceback, gives up after ``--wait SECONDS`` with one line and a non-zero exit, and
starts normally once the broker answers.

The broker "comes back" through a loopback TCP relay in front of the real Kafka: nothing listens on
the relay's port at first, then the relay starts forwarding to the stack's broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meterwatch.contracts import BaselineSnapshot
from meterwatch.settings import Settings

from .conftest import REPO, customer, daily_readings, free_port, publish, settings_env, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]


def start_worker(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = settings_env(settings)
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "meterwatch.cli", "worker", "--metrics-port", "0", *args],
            env=env,
            cwd=str(REPO),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_with_kafka_down_the_worker_gives_up_after_wait_with_one_line(
    mw_settings: Settings, tmp_path: Path
) -> None:
    s = mw_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})  # nothing listens
    log = tmp_path / "worker.log"
    proc = start_worker(s, log, "--wait", "3")
    rc = await asyncio.to_thread(proc.wait, 60)
    text = log.read_text()
    assert rc == 69, text
    assert "Traceback" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[-1].startswith("meterwatch worker: Kafka at ") and "giving up" in lines[-1], text
    assert all(ln.startswith("meterwatch worker: ") for ln in lines), text  # nothing but its own lines


class Relay:
    """A loopback TCP relay to the real broker (the bootstrap connection only)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(*self.target)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_w), copy(up_r, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_the_worker_waits_for_kafka_and_then_starts(
    mw_settings: Settings, tmp_path: Path, kafka_producer: Any, redis_client: Any
) -> None:
    port = free_port()
    s = mw_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    log = tmp_path / "worker.log"
    proc = start_worker(s, log)
    relay = Relay(port, (mw_settings.kafka_host, mw_settings.kafka_port))
    try:
        await wait_for(lambda: "waiting for Kafka" in log.read_text(), 60, "the one-line waiting message")
        assert proc.poll() is None, log.read_text()  # still there, waiting
        assert "Traceback" not in log.read_text()
        await relay.start()  # the broker answers now
        await publish(kafka_producer, s.topic_customers, [("c1", customer("c1", ["m1"]))])
        readings = daily_readings("m1", dt.date(2024, 3, 1), 1, 4.8)[:4]
        await publish(kafka_producer, s.topic_readings, [(r["meter_id"], r) for r in readings])

        async def booked() -> bool:
            raw = await snapshot_of(redis_client, s, "c1")
            return (
                raw is not None and BaselineSnapshot.model_validate_json(raw).cycle.cycle_to_date_kwh > 0.39
            )

        await wait_for(booked, 90, "the worker to start and process readings")
        assert "Traceback" not in log.read_text()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        if proc.poll() is None:
            proc.kill()
        await relay.stop()
