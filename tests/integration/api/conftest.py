"""Fixtures of the Ops API tests: an app on the real Redis, tokens of every kind, seeded read model.

The read model is written here directly, in the shapes the worker writes
(docs/INTERFACES.md: ``baseline:{id}``, ``customer:{id}``, ``alerts:{id}`` +
``alertbody:{id}``, ``segments``, ``readmodel:heartbeat``, ``metrics:{service}``).
Every test gets its own Redis prefix (``mw_settings``) and its keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from api.app import create_app
from meterwatch.auth import create_token
from meterwatch.contracts import (
    Alert,
    BaselineBlock,
    BaselineSnapshot,
    ClosedCycle,
    CustomerRecord,
    CycleNow,
    CycleRef,
    Explanation,
    Observed,
    SamePeriod,
    SegmentRef,
    SegmentSummary,
)
from meterwatch.keys import Keys
from meterwatch.settings import Settings

UTC = dt.UTC


def make_snapshot(customer_id: str, manager_id: str | None, kwh: float = 12.5) -> BaselineSnapshot:
    cycles = [
        ClosedCycle(
            start=dt.date(2023 + (m // 12), m % 12 + 1, 1),
            end=dt.date(2023 + ((m + 1) // 12), (m + 1) % 12 + 1, 1),
            kwh=200.0 + m,
            coverage=1.0,
        )
        for m in range(24)
    ]
    return BaselineSnapshot(
        customer_id=customer_id,
        as_of=dt.datetime(2025, 1, 10, 12, 0, tzinfo=UTC),
        cycle=CycleNow(
            start=dt.date(2025, 1, 1),
            end=dt.date(2025, 2, 1),
            cycle_to_date_kwh=kwh,
            days_elapsed=9.5,
            projected_kwh=kwh * 31 / 9.5,
        ),
        same_period=SamePeriod(start=dt.date(2024, 1, 1), end=dt.date(2024, 2, 1), kwh=210.0, coverage=1.0),
        baseline=BaselineBlock(daily_kwh=6.8, cycles=cycles),
        segment=SegmentRef(id=2, label="comfortable homeowners"),
        open_alerts=[],
        manager_id=manager_id,
    )


def make_alert(customer_id: str, manager_id: str | None, rule: str, day: int) -> Alert:
    ts = dt.datetime(2025, 1, day, 8, 0, tzinfo=UTC)
    return Alert(
        alert_id=f"{customer_id}-{rule}-{day}",
        customer_id=customer_id,
        meter_ids=[f"m-{customer_id}"],
        rule=rule,
        severity="warning",
        cycle=CycleRef(start=dt.date(2025, 1, 1), end=dt.date(2025, 2, 1)),
        observed=Observed(cycle_to_date_kwh=100.0 + day, same_period_kwh=120.0, ratio=0.9),
        segment=SegmentRef(id=2, label="comfortable homeowners"),
        manager_id=manager_id,
        triggered_by=ts,
        created_at=ts + dt.timedelta(seconds=2),
        explanation=Explanation.model_validate(
            {"zh-CN": "用电量已接近去年同期。", "en": "Usage is near last year's."}
        ),
    )


@dataclass
class ReadModel:
    """Writes the read model the way the worker does (the documented contract)."""

    redis: Redis
    keys: Keys
    written: list[str] = field(default_factory=list)

    async def customer(
        self, customer_id: str, manager_id: str | None, phone: str | None = "+8613812345678", **kw: Any
    ) -> CustomerRecord:
        rec = CustomerRecord(
            customer_id=customer_id, manager_id=manager_id, phone=phone, meter_ids=[f"m-{customer_id}"], **kw
        )
        await self.redis.set(self.keys.customer(customer_id), rec.model_dump_json())
        return rec

    async def baseline(self, customer_id: str, manager_id: str | None, kwh: float = 12.5) -> BaselineSnapshot:
        snap = make_snapshot(customer_id, manager_id, kwh)
        await self.redis.set(self.keys.baseline(customer_id), snap.model_dump_json())
        return snap

    async def alert(self, customer_id: str, manager_id: str | None, rule: str, day: int) -> Alert:
        a = make_alert(customer_id, manager_id, rule, day)
        async with self.redis.pipeline(transaction=True) as p:
            p.zadd(self.keys.alerts(customer_id), {a.alert_id: a.triggered_by.timestamp()})
            p.hset(self.keys.alert_bodies(customer_id), a.alert_id, a.to_json())
            await p.execute()
        return a

    async def segments(self, n: int = 3) -> list[SegmentSummary]:
        segs = [
            SegmentSummary(
                id=i,
                label=f"segment {i}",
                size=10 * (i + 1),
                centroid={"daily_kwh": 5.0 + i},
                characteristics=[f"daily use about {5 + i} kWh"],
            )
            for i in range(n)
        ]
        await self.redis.set(self.keys.segments, "[" + ",".join(s.model_dump_json() for s in segs) + "]")
        return segs

    async def heartbeat(self, age_s: float = 0.0) -> None:
        await self.redis.set(self.keys.heartbeat, str(time.time() - age_s))


@dataclass
class Tokens:
    ops: str
    mgr_a: str
    mgr_b: str
    expired: str
    revoked: str
    revoked_id: str


@pytest.fixture
def api_settings(mw_settings: Settings) -> Settings:
    return mw_settings.model_copy(update={"api_token_cache_s": 0.2, "api_rate_limit_per_min": 100_000})


@pytest.fixture
async def redis(api_settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(api_settings.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{api_settings.redis_prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def keys(api_settings: Settings) -> Keys:
    return Keys(api_settings.redis_prefix)


@pytest.fixture
def rm(redis: Redis, keys: Keys) -> ReadModel:
    return ReadModel(redis, keys)


@pytest.fixture
async def tokens(redis: Redis, keys: Keys) -> Tokens:
    ops, _ = await create_token(redis, keys, "ops", label="test ops")
    a, _ = await create_token(redis, keys, "manager", "mgr-a")
    b, _ = await create_token(redis, keys, "manager", "mgr-b")
    expired, _ = await create_token(redis, keys, "ops", ttl_days=0.05 / 86400)  # 50 ms
    revoked, rec = await create_token(redis, keys, "ops")
    from meterwatch.auth import revoke_token

    assert await revoke_token(redis, keys, rec.token_id)
    await asyncio.sleep(0.06)
    return Tokens(ops, a, b, expired, revoked, rec.token_id)


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    yield application
    await application.state.runtime.aclose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    app: FastAPI


@pytest.fixture
def live_api(api_settings: Settings) -> Iterator[LiveServer]:
    """The API served by a real uvicorn on a loopback port, in a background thread."""
    application = create_app(api_settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", application)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
