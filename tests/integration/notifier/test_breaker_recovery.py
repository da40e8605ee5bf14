"""The circuit breaker on the real Redis with a fake gateway, time injected (issue #10, item 10)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from meterwatch.settings import Settings
from notifier.clock import FixedClock

from .conftest import (
    Tokens,
    make_alert,
    make_customer,
    notifier_settings,
    put_customers,
    run_notifier,
    wait_until,
)
from .fakes import FakeGateway

pytestmark = pytest.mark.integration
UTC = dt.UTC
NIGHT = dt.datetime(2025, 1, 21, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: every SMS waits for 08:00
T0 = dt.datetime(2025, 1, 22, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: all of them are due at once


async def _post_overnight(
    client: httpx.AsyncClient, ops: str, customers: list[str], clock: FixedClock
) -> list[str]:
    """Alerts that arrive at night: their SMS all become due together at 08:00, then in flight together."""
    clock.set(NIGHT)
    ids: list[str] = []
    for cid in customers:
        r = await client.post("/v1/alerts", content=make_alert(cid).to_json(), headers=Tokens.h(ops))
        sms = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert sms["status"] == "deferred"
        ids.append(sms["notification_id"])
    clock.set(T0)
    return ids


async def _statuses(client: httpx.AsyncClient, ops: str, ids: list[str]) -> list[dict[str, Any]]:
    return [(await client.get(f"/v1/notifications/{i}", headers=Tokens.h(ops))).json() for i in ids]


async def _settled(client: httpx.AsyncClient, ops: str, ids: list[str], status: str) -> list[dict[str, Any]]:
    async def all_in() -> list[dict[str, Any]] | None:
        views = await _statuses(client, ops, ids)
        return views if all(v["status"] == status for v in views) else None

    views: list[dict[str, Any]] = await wait_until(all_in, timeout=20, what=f"every SMS {status}")
    return views


async def _metric_reaches(redis: Redis, s: Settings, name: str, want: int) -> None:
    async def reached() -> bool:
        return int(await redis.hget(f"{s.redis_prefix}metrics:notifier", name) or 0) >= want

    await wait_until(reached, timeout=20, what=f"{name} >= {want}")


async def _due_in_s(redis: Redis, s: Settings, ids: list[str]) -> list[float]:
    scores = [await redis.zscore(f"{s.redis_prefix}n:due", i) for i in ids]
    return [(float(x) / 1000 - T0.timestamp()) for x in scores if x is not None]


async def test_a_blip_of_failures_opens_the_breaker_once_and_sending_resumes_after_the_cooldown(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(
        mw_settings,
        sms_gw,
        push_gw,
        notifier_breaker_threshold=5,
        notifier_breaker_cooldown_s=5.0,
        manager_digest_threshold_per_hour=0,
        quiet_hours_start=21,
        quiet_hours_end=8,
    )
    customers = [f"b{i}" for i in range(12)]
    await put_customers(
        redis, s, *(make_customer(c, phone=f"+86137002370{i:02d}") for i, c in enumerate(customers))
    )
    sms_gw.fail_next, sms_gw.delay_s = 12, 0.1  # 12 requests in flight fail together: a 0.1 s blip
    clock = FixedClock(T0)
    async with run_notifier(s, clock=clock, consume=False) as n:
        ids = await _post_overnight(n.client, tokens.ops, customers, clock)
        assert await asyncio.to_thread(sms_gw.wait_requests, 12, 20)
        await _settled(n.client, tokens.ops, ids, "retrying")
        due = await _due_in_s(redis, s, ids)
        # every SMS waits for the breaker's first probe, 5 s on: not +10/+20/+40/+60 s
        assert len(due) == 12 and max(due) <= 5.0 + 0.6, sorted(due)
        m = await redis.hgetall(f"{s.redis_prefix}metrics:notifier")
        assert m['breaker_opened{channel="sms"}'] == "1"
        sms_gw.delay_s = 0.0  # the gateway is back
        clock.set(T0 + dt.timedelta(seconds=5.6))  # the cool-down is over: one probe goes out
        await _metric_reaches(redis, s, "sms_sent", 1)  # ... and succeeds: the breaker is closed
        clock.set(T0 + dt.timedelta(seconds=6.2))  # everything else goes
        views = await _settled(n.client, tokens.ops, ids, "sent")
    assert set(sms_gw.deliveries) == set(ids) and sms_gw.duplicates == 0
    assert all(v["attempts"] <= 2 for v in views)


async def test_a_gateway_down_for_a_while_is_probed_one_request_at_a_time(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(
        mw_settings,
        sms_gw,
        push_gw,
        delivery_max_attempts=3,
        notifier_breaker_threshold=3,
        notifier_breaker_cooldown_s=0.3,
        manager_digest_threshold_per_hour=0,
        quiet_hours_start=21,
        quiet_hours_end=8,
    )
    customers = [f"g{i}" for i in range(8)]
    await put_customers(
        redis, s, *(make_customer(c, phone=f"+861370013700{i}") for i, c in enumerate(customers))
    )
    sms_gw.fail_always = True
    clock = FixedClock(T0)
    async with run_notifier(s, clock=clock, consume=False) as n:
        ids = await _post_overnight(n.client, tokens.ops, customers, clock)
        assert await asyncio.to_thread(sms_gw.wait_requests, 8, 20)
        await _settled(n.client, tokens.ops, ids, "retrying")
        # while it stays down, each cool-down (0.3, 0.6, 1.2, 2.4 s) lets exactly one probe through
        await _metric_reaches(redis, s, "sms_gateway_down", 6)  # failures 3-8 found the breaker open
        for probes, cooldown in enumerate((0.3, 0.6, 1.2, 2.4), start=1):
            clock.advance(cooldown + 0.6)
            await _metric_reaches(redis, s, "sms_gateway_down", 6 + probes)  # the probe failed
            assert len(sms_gw.requests) == 8 + probes
        sms_gw.fail_always = False
        clock.advance(4.8 + 0.6)  # the probe succeeds ...
        await _metric_reaches(redis, s, "sms_sent", 1)
        clock.advance(1.0)  # ... and the rest follow
        views = await _settled(n.client, tokens.ops, ids, "sent")
    assert set(sms_gw.deliveries) == set(ids) and sms_gw.duplicates == 0
    assert all(v["attempts"] < 3 for v in views)  # waiting for the gateway spent no retry budget
    assert not [b for b in push_gw.bodies() if b["kind"] == "escalation"]
    assert any(e["detail"].startswith("HTTP 500; gateway down") for v in views for e in v["history"])
