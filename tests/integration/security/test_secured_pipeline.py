"""The whole pipeline through secured connections, and refused credentials as one clear line.

A private broker accepts only SASL_SSL (SCRAM-SHA-512, a CA made for the session) and a
private Redis only TLS with an ACL user (``securestack.py``). The worker, the notifier and
the API run as ``meterwatch`` child processes that get their passwords from files
(``MW_*_PASSWORD_FILE``); a surge must come out as an alert, a notification and a baseline
the API serves, and no process may write a password or a traceback to its log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from meterwatch.auth import create_token
from meterwatch.connections import kafka_client_kwargs, redis_client
from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from meterwatch.settings import SECRET_FILES, Settings

from .securestack import SecureStack, free_port

pytestmark = [pytest.mark.integration]

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def child_env(s: Settings, secrets_dir: Path) -> dict[str, str]:
    """The MW_ environment of ``s`` for a child process; every secret goes through a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    secrets_dir.mkdir(parents=True, exist_ok=True)
    for name, value in s.model_dump(mode="json").items():
        raw = getattr(s, name)
        if name in SECRET_FILES.values() or value is None:
            continue
        if isinstance(raw, SecretStr):
            if raw.get_secret_value():
                path = secrets_dir / name
                path.write_text(raw.get_secret_value() + "\n")
                path.chmod(0o600)
                env[f"MW_{name.upper()}_FILE"] = str(path)
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def customer(cid: str, meter: str, manager: str) -> dict[str, Any]:
    return {
        "customer_id": cid, "meter_ids": [meter], "name": f"Customer {cid}", "phone": "+447700900123",
        "manager_id": manager, "read_day": 1, "timezone": "UTC", "language": "en", "sms_opt_in": True,
    }  # fmt: skip


def readings(meter: str, days: int, surge_from: int, factor: float, seed: int) -> list[dict[str, Any]]:
    """Half-hourly readings of ~8 kWh/day, ``factor`` x from day ``surge_from``."""
    rnd = random.Random(seed)
    out = []
    for day in range(days):
        level = 8.0 * (1 + 0.15 * rnd.uniform(-1, 1)) * (factor if day >= surge_from else 1.0)
        for i in range(48):
            ts = T0 + dt.timedelta(days=day, minutes=30 * (i + 1))
            out.append({"meter_id": meter, "ts": ts.isoformat(), "kwh": round(level / 48, 5)})
    return out


async def wait_for(predicate: Callable[[], Awaitable[Any]], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


class Procs:
    """``meterwatch`` child processes of one test, stopped (SIGTERM) at its end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "meterwatch.cli", *args],
                env=env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.started.append((proc, log))
        return proc

    def logs(self) -> dict[str, str]:
        return {log.name: log.read_text(errors="replace") for _, log in self.started}

    def stop(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop()


async def _publish(s: Settings, topic: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka_client_kwargs(s), acks="all", linger_ms=20)
    await producer.start()
    try:
        for key, value in items:
            await producer.send(topic, key=key.encode(), value=json.dumps(value).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _alerts(s: Settings) -> list[Alert]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka_client_kwargs(s), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(s.topic_alerts, p) for p in range(s.alerts_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        batches = await consumer.getmany(*parts, timeout_ms=1500)
        return [Alert.model_validate_json(r.value) for recs in batches.values() for r in recs]
    finally:
        await consumer.stop()


async def test_worker_notifier_and_api_run_through_sasl_ssl_kafka_and_tls_redis(
    secure_settings: Settings, secure_stack: SecureStack, procs: Procs, tmp_path: Path
) -> None:
    # every HTTP endpoint on a configured address (not the default 127.0.0.1)
    host = "127.0.0.2"
    s = secure_settings.model_copy(
        update={"api_host": host, "notifier_host": host, "worker_metrics_host": host}
    )
    env = child_env(s, tmp_path / "secrets")
    api_port, notifier_port, metrics_port = free_port(), free_port(), free_port()
    worker = procs.start("worker", ["worker", "--instance", "w0", "--metrics-port", str(metrics_port)], env)
    notifier = procs.start("notifier", ["notifier", "--port", str(notifier_port)], env)
    api = procs.start("api", ["api", "--port", str(api_port)], env)

    await _publish(s, s.topic_customers, [("c-surge", customer("c-surge", "m-surge", "mgr-7")),
                                          ("c-quiet", customer("c-quiet", "m-quiet", "mgr-7"))])  # fmt: skip
    rows = readings("m-surge", 40, 32, 5.0, seed=2) + readings("m-quiet", 40, 99, 1.0, seed=1)
    await _publish(s, s.topic_readings, [(r["meter_id"], r) for r in rows])

    redis = redis_client(s)  # TLS + ACL user, in-process
    try:
        token, _ = await create_token(redis, Keys(s.redis_prefix), "ops", label="secured test")
    finally:
        await redis.aclose()
    auth = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(timeout=5) as http:

        async def baseline() -> dict[str, Any] | None:
            assert worker.poll() is None and api.poll() is None, procs.logs()
            try:
                r = await http.get(f"http://{host}:{api_port}/v1/customers/c-surge/baseline", headers=auth)
            except httpx.TransportError:
                return None
            body: dict[str, Any] = r.json() if r.status_code == 200 else {}
            return body if body.get("as_of", "") >= "2024-04-09T23" else None

        snap = await wait_for(baseline, 75, "the API to serve c-surge's baseline of the last reading")
        assert 6 < snap["baseline"]["daily_kwh"] < 10

        alerts = await wait_for(lambda: _alerts(s), 20, "the surge alert on the alerts topic")
        assert [(a.customer_id, a.rule) for a in alerts] == [("c-surge", "sudden_increase")]

        async def notified() -> dict[str, Any] | None:
            assert notifier.poll() is None, procs.logs()
            url = f"http://{host}:{notifier_port}/v1/alerts/{alerts[0].alert_id}/notifications"
            try:
                r = await http.get(url, headers=auth)
            except httpx.TransportError:
                return None
            body: dict[str, Any] = r.json() if r.status_code == 200 else {}
            return body if body.get("notifications") else None

        got = await wait_for(notified, 30, "the notifier to record the alert's notifications")
        assert got["alert_id"] == alerts[0].alert_id
        health = await http.get(f"http://{host}:{metrics_port}/healthz")
        assert health.status_code == 200, health.text
        ready = await http.get(f"http://{host}:{notifier_port}/readyz")  # its Kafka and Redis clients
        assert ready.status_code == 200 and ready.json()["checks"] == {"redis": True, "kafka": True}, (
            ready.text
        )

    procs.stop()
    for name, text in procs.logs().items():
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"
        for secret in (secure_stack.kafka_password, secure_stack.redis_password):
            assert secret not in text, f"{name} logged a password"


def test_refused_credentials_and_certificates_are_one_clear_line_each(
    secure_settings: Settings, secure_stack: SecureStack, procs: Procs, tmp_path: Path
) -> None:
    s = secure_settings
    wrong_kafka = s.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    wrong_redis = s.model_copy(update={"redis_password": SecretStr("not-the-password")})
    untrusted = s.model_copy(update={"kafka_ssl_cafile": str(secure_stack.foreign_ca)})
    no_password = s.model_copy(update={"redis_username": "", "redis_password": SecretStr("")})
    cases = {
        "worker-kafka-password": (wrong_kafka, ["worker", "--metrics-port", "0"]),
        "api-redis-password": (wrong_redis, ["api", "--port", str(free_port())]),
        "notifier-untrusted-ca": (untrusted, ["notifier", "--port", str(free_port())]),
        "token-no-redis-password": (no_password, ["token", "list"]),
    }
    procs_ = {
        name: procs.start(name, args, child_env(st, tmp_path / name)) for name, (st, args) in cases.items()
    }
    for proc in procs_.values():
        proc.wait(timeout=60)
    logs = procs.logs()
    want = {
        "worker-kafka-password": ("refused MW_KAFKA_SASL_USERNAME='meterwatch'", "MW_KAFKA_SASL_PASSWORD"),
        "api-redis-password": ("refused ACL user MW_REDIS_USERNAME='meterwatch'", "MW_REDIS_PASSWORD"),
        "notifier-untrusted-ca": ("TLS certificate is not trusted", "MW_KAFKA_SSL_CAFILE"),
        "token-no-redis-password": ("wants a password", "MW_REDIS_PASSWORD"),
    }
    for name, proc in procs_.items():
        text = logs[f"{name}.log"]
        lines = text.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, f"{name}: rc={proc.returncode}\n{text[-3000:]}"
        assert lines[0].startswith(f"meterwatch {cases[name][1][0]}: "), lines[0]
        assert all(part in lines[0] for part in want[name]), lines[0]
        assert secure_stack.kafka_password not in text and secure_stack.redis_password not in text


async def test_api_hot_path_authenticates_as_the_acl_user_on_plain_redis(
    secure_settings: Settings, secure_stack: SecureStack
) -> None:
    from api.app import create_app
    from api.muxredis import MuxRedis

    s = secure_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{secure_stack.redis_plain_port}/0", "redis_ssl_cafile": ""}
    )
    redis = redis_client(s)
    try:
        token, _ = await create_token(redis, Keys(s.redis_prefix), "ops")
    finally:
        await redis.aclose()
    for password, status in ((secure_stack.redis_password, 200), ("not-the-password", 503)):
        app = create_app(s.model_copy(update={"redis_password": SecretStr(password)}))
        try:
            assert isinstance(app.state.runtime.hot, MuxRedis)  # the pipelined client, with AUTH
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
                r = await http.get(
                    "/v1/baselines",
                    params={"customer_id": "c-x"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert r.status_code == status, r.text
            assert password not in r.text
            if status == 200:
                assert r.json() == {"baselines": [], "missing": ["c-x"]}
        finally:
            await app.state.runtime.aclose()


async def test_the_registry_publisher_of_budget_changes_goes_through_sasl_ssl(
    secure_settings: Settings,
) -> None:
    from aiokafka import AIOKafkaConsumer

    from meterwatch.registry import RegistryPublisher

    s = secure_settings
    publisher = RegistryPublisher(s, timeout_s=20)
    try:
        await publisher(b"c-budget", json.dumps(customer("c-budget", "m-budget", "mgr-1")).encode())
    finally:
        await publisher.aclose()
    consumer = AIOKafkaConsumer(
        s.topic_customers, **kafka_client_kwargs(s), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    assert [r.key for recs in batches.values() for r in recs] == [b"c-budget"]
