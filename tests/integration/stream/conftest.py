"""Fixtures of the stream tests: real `meterwatch worker` processes on the real stack.

``worker_factory(settings, instance="w0")`` starts ``meterwatch worker`` as a
subprocess with the test's isolated settings passed as ``MW_`` environment
variables; every process started is killed at teardown. Helpers publish
customers and readings and read topics/Redis with deadlines (never sleeps with
hard-coded results).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.snapshots import Snapshots
from meterwatch.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def settings_env(settings: Settings) -> dict[str, str]:
    """The MW_ environment that reproduces ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or name.startswith("sms_http_auth") or name == "sms_inbound_secret":
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProc:
    def __init__(self, settings: Settings, instance: str, log_path: Path, extra_env: dict[str, str]) -> None:
        self.settings = settings
        self.instance = instance
        self.metrics_port = free_port()
        self.log_path = log_path
        env = settings_env(settings)
        env.update(extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meterwatch.cli",
                "worker",
                "--instance",
                instance,
                "--metrics-port",
                str(self.metrics_port),
                "--loglevel",
                "info",
            ],
            env=env,
            cwd=str(log_path.parent),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    rep = yield
    setattr(item, f"mw_rep_{rep.when}", rep)
    return rep


@pytest.fixture
def worker_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., WorkerProc]]:
    started: list[WorkerProc] = []

    def start(settings: Settings, instance: str = "w0", **extra_env: str) -> WorkerProc:
        w = WorkerProc(settings, instance, tmp_path / f"worker-{instance}-{len(started)}.log", extra_env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(timeout=10)
    rep = getattr(request.node, "mw_rep_call", None)
    if rep is not None and rep.failed:
        # the worker logs are the only account of what a failed run's processes did
        for w in started:
            lines = w.log_text().splitlines()
            print(f"\n===== {w.log_path.name} (last 120 of {len(lines)} lines) =====")
            print("\n".join(lines[-120:]))


# --------------------------------------------------------------------------------- data helpers


def customer(cid: str, meters: list[str], **kw: Any) -> dict[str, Any]:
    rec = {
        "customer_id": cid,
        "meter_ids": meters,
        "name": f"Customer {cid}",
        "phone": "+447700900123",
        "manager_id": "mgr-1",
        "read_day": 1,
        "timezone": "UTC",
        "language": "en",
        "sms_opt_in": True,
    }
    rec.update(kw)
    return rec


def daily_readings(meter: str, start: dt.date, days: int, kwh_per_day: float) -> list[dict[str, Any]]:
    """Half-hourly interval readings, ``kwh_per_day`` spread evenly."""
    out = []
    t0 = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    per = round(kwh_per_day / 48, 6)
    for i in range(days * 48):
        ts = t0 + dt.timedelta(minutes=30 * (i + 1))
        out.append({"meter_id": meter, "ts": ts.isoformat(), "kwh": per})
    return out


async def publish(producer: Any, topic: str, items: list[tuple[str, Any]]) -> None:
    """Send (key, value) pairs; value dict -> JSON, bytes as is, None -> tombstone."""
    futs = []
    for key, value in items:
        if isinstance(value, dict):
            raw: bytes | None = json.dumps(value).encode()
        else:
            raw = value
        futs.append(await producer.send(topic, key=key.encode(), value=raw))
    await producer.flush()
    await asyncio.gather(*futs)


async def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    """Poll an async or sync predicate until it returns a truthy value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


async def snapshot_of(redis: Any, settings: Settings, customer_id: str) -> bytes | None:
    """The customer's baseline snapshot as the Ops API shows it (built on read from the worker's state)."""
    snapshot, _ = await Snapshots.for_settings(settings).read(redis, customer_id)
    return snapshot
