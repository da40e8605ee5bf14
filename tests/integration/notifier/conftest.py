"""Fixtures of the notifier tests: fake gateways, the notifier on loopback (in-process or a
subprocess), tokens, and the customer registry copy written directly into Redis (the documented
contract: ``customer:{id}`` holds CustomerRecord JSON, written by the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from redis.asyncio import Redis

from meterwatch.auth import create_token
from meterwatch.contracts import Alert, CustomerRecord, CycleRef, Explanation, Observed, SegmentRef
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.app import create_app
from notifier.clock import Clock

from .fakes import FakeGateway

UTC = dt.UTC
REPO = Path(__file__).resolve().parents[3]


def make_alert(
    customer_id: str,
    rule: str = "same_period_reached",
    cycle_start: dt.date = dt.date(2025, 1, 1),
    manager_id: str | None = "mgr-1",
    segment: SegmentRef | None = None,
    customer_facing: bool = True,
    ctd: float = 312.4,
    same: float = 298.0,
    alert_id: str | None = None,
) -> Alert:
    ts = dt.datetime.combine(cycle_start + dt.timedelta(days=20), dt.time(8), tzinfo=UTC)
    return Alert(
        alert_id=alert_id or f"{customer_id}:{rule}:{cycle_start.isoformat()}",
        customer_id=customer_id,
        meter_ids=[f"m-{customer_id}"],
        rule=rule,
        severity="warning",
        cycle=CycleRef(start=cycle_start, end=cycle_start + dt.timedelta(days=31)),
        observed=Observed(
            cycle_to_date_kwh=ctd,
            same_period_kwh=same,
            baseline_daily_kwh=9.6,
            recent_daily_kwh=14.9,
            projected_cycle_kwh=ctd * 31 / 20,
            ratio=ctd / same if same else None,
        ),
        segment=segment or SegmentRef(id=1, label="ordinary"),
        manager_id=manager_id,
        triggered_by=ts,
        created_at=dt.datetime.now(UTC),
        explanation=Explanation.model_validate(
            {
                "zh-CN": "本期用电已达去年同期全期用电。",
                "en": "Cycle-to-date use reached last year's whole cycle.",
            }
        ),
        customer_facing=customer_facing,
    )


def make_customer(customer_id: str, phone: str = "+8613800138000", **kw: Any) -> CustomerRecord:
    base: dict[str, Any] = dict(
        customer_id=customer_id,
        meter_ids=[f"m-{customer_id}"],
        name="张伟",
        phone=phone,
        manager_id="mgr-1",
        timezone="Asia/Shanghai",
        language="zh-CN",
        sms_opt_in=True,
    )
    base.update(kw)
    return CustomerRecord.model_validate(base)


async def put_customers(redis: Redis, settings: Settings, *records: CustomerRecord) -> None:
    keys = Keys(settings.redis_prefix)
    await redis.mset({keys.customer(r.customer_id): r.model_dump_json() for r in records})


@pytest.fixture
def sms_gw() -> Iterator[FakeGateway]:
    gw = FakeGateway("sms").start()
    yield gw
    gw.stop()


@pytest.fixture
def push_gw() -> Iterator[FakeGateway]:
    gw = FakeGateway("push").start()
    yield gw
    gw.stop()


def notifier_settings(base: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, **kw: Any) -> Settings:
    upd: dict[str, Any] = dict(
        sms_provider="http",
        sms_http_url=sms_gw.url,
        sms_http_status_url=sms_gw.status_url,
        sms_status_recheck_s=0.2,
        sms_http_auth_header=SecretStr("X-Api-Key: k-test"),
        push_webhook_url=push_gw.url,
        notifier_group_id=f"{base.app_id}-notifier",
        notifier_poll_interval_s=0.05,
        delivery_backoff_base_s=0.05,
        delivery_backoff_max_s=0.4,
        delivery_max_attempts=5,
        sms_timeout_s=2.0,
        push_timeout_s=2.0,
        quiet_hours_start=0,
        quiet_hours_end=0,  # off unless a test turns them on
        notifier_lease_s=5.0,
        notifier_rate_limit_per_min=1_000_000,  # tests poll statuses; test_limits sets its own
    )
    upd.update(kw)
    return base.model_copy(update=upd)


@pytest.fixture
def nsettings(mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway) -> Settings:
    return notifier_settings(mw_settings, sms_gw, push_gw)


@pytest.fixture
async def redis(mw_settings: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(mw_settings.redis_url, decode_responses=True)
    try:
        yield r
    finally:
        await r.aclose()


@dataclass
class Tokens:
    ops: str
    mgr1: str
    mgr2: str

    @staticmethod
    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
async def tokens(redis: Redis, mw_settings: Settings) -> Tokens:
    keys = Keys(mw_settings.redis_prefix)
    ops, _ = await create_token(redis, keys, "ops", label="test ops")
    m1, _ = await create_token(redis, keys, "manager", manager_id="mgr-1")
    m2, _ = await create_token(redis, keys, "manager", manager_id="mgr-2")
    return Tokens(ops, m1, m2)


@dataclass
class Running:
    url: str
    app: Any
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def run_notifier(
    settings: Settings, clock: Clock | None = None, consume: bool = True
) -> AsyncIterator[Running]:
    """The notifier app served by uvicorn on a free loopback port, in this event loop."""
    app = create_app(settings, clock=clock, consume=consume)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    assert server.started, "notifier did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            yield Running(url, app, client)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=20)


async def wait_until(
    pred: Any,
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``pred`` (sync or async) until it returns a truthy value (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(interval)


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus text exposition (None when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def dispatcher_passes(app: Any, passes: int = 2) -> None:
    """Wait until the dispatcher has looked at the due queue ``passes`` more times (and handled what
    it found): after that, nothing that was due can still be on its way. Replaces "sleep and hope"."""
    d = app.state.dispatcher
    start = d.ticks
    await wait_until(lambda: d.ticks >= start + passes, what=f"{passes} dispatcher passes")
