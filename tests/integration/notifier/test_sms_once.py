"""A customer gets each SMS once, even when the notifier cannot tell whether the gateway took it
(issue #10, item 9). The kill -9 case is in test_replicas.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from meterwatch.settings import Settings

from .conftest import (
    Tokens,
    make_alert,
    make_customer,
    metric_value,
    notifier_settings,
    put_customers,
    run_notifier,
    wait_until,
)
from .fakes import FakeGateway

pytestmark = pytest.mark.integration


async def _post_alerts(client: httpx.AsyncClient, ops: str, customers: list[str]) -> list[str]:
    ids: list[str] = []
    for cid in customers:
        r = await client.post("/v1/alerts", content=make_alert(cid).to_json(), headers=Tokens.h(ops))
        assert r.status_code == 202, r.text
        ids.append({x["channel"]: x["notification_id"] for x in r.json()["notifications"]}["sms"])
    return ids


async def _views_when_done(
    client: httpx.AsyncClient, ops: str, ids: list[str], want: str = "sent", deadline_s: float = 30
) -> list[dict[str, Any]]:
    async def done() -> list[dict[str, Any]] | None:
        views = [(await client.get(f"/v1/notifications/{i}", headers=Tokens.h(ops))).json() for i in ids]
        return views if all(v["status"] == want for v in views) else None

    views: list[dict[str, Any]] = await wait_until(done, timeout=deadline_s, what=f"every SMS {want}")
    return views


async def _metrics(redis: Redis, s: Settings) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in (await redis.hgetall(f"{s.redis_prefix}metrics:notifier")).items():
        assert isinstance(k, str)  # the fixture's client decodes responses
        out[k] = int(v)
    return out


async def test_a_gateway_slower_than_the_timeout_gets_each_sms_once(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, sms_timeout_s=1.0, notifier_lease_s=3.0)
    customers = [f"slow{i}" for i in range(10)]
    await put_customers(
        redis, s, *(make_customer(c, phone=f"+86137001370{i:02d}") for i, c in enumerate(customers))
    )
    sms_gw.slow_next, sms_gw.slow_s = 10, 2.5  # every first request answers after the timeout
    async with run_notifier(s, consume=False) as n:
        ids = await _post_alerts(n.client, tokens.ops, customers)
        views = await _views_when_done(n.client, tokens.ops, ids)
    # sent means settled: the notification left the due queue, nothing more can go out
    assert sorted(sms_gw.refs()) == sorted(ids)  # one request per SMS on the wire (was: 2 each)
    assert sms_gw.duplicates == 0
    for v in views:
        assert [e["status"] for e in v["history"]] == ["queued", "retrying", "sent"]
        assert "outcome unknown" in v["history"][1]["detail"] and "timeout" in v["history"][1]["detail"]
        assert "the gateway has it" in v["history"][2]["detail"]
        assert v["gateway_id"].startswith("sms-n_")  # learnt from the status query
    m = await _metrics(redis, s)
    assert m['unknown_outcomes{channel="sms"}'] == 10
    assert m['sms_reconciled{outcome="accepted"}'] == 10
    assert 'possible_duplicates{channel="sms"}' not in m
    assert m["sms_sent"] == 10


async def test_status_queries_that_fail_are_retried_before_anything_is_resent(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, sms_timeout_s=1.0, sms_status_max_checks=5)
    await put_customers(redis, s, make_customer("sq1"))
    sms_gw.slow_next, sms_gw.slow_s = 1, 2.5
    sms_gw.status_fail_next = 2
    async with run_notifier(s, consume=False) as n:
        (nid,) = await _post_alerts(n.client, tokens.ops, ["sq1"])
        (view,) = await _views_when_done(n.client, tokens.ops, [nid])
    assert sms_gw.refs() == [nid]
    assert sms_gw.status_requests == [nid, nid, nid]
    details = [e["detail"] for e in view["history"]]
    assert [e["status"] for e in view["history"]] == ["queued", "retrying", "retrying", "retrying", "sent"]
    assert "status query failed" in details[2] and "HTTP 503" in details[2]
    assert view["attempts"] == 1


async def test_a_request_the_gateway_never_took_is_sent_again(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw)
    await put_customers(redis, s, make_customer("dr1"))
    sms_gw.drop_next = 1  # the connection closes after the request, before any answer
    async with run_notifier(s, consume=False) as n:
        (nid,) = await _post_alerts(n.client, tokens.ops, ["dr1"])
        (view,) = await _views_when_done(n.client, tokens.ops, [nid])
    assert sms_gw.refs() == [nid, nid] and list(sms_gw.deliveries) == [nid] and sms_gw.duplicates == 0
    assert [e["status"] for e in view["history"]] == ["queued", "retrying", "sent"]
    assert "transport: RemoteProtocolError" in view["history"][1]["detail"]
    assert view["history"][2]["detail"] == "attempt 2 (attempt 1: the gateway never received it)"
    m = await _metrics(redis, s)
    assert m['sms_reconciled{outcome="absent"}'] == 1
    assert m['possible_duplicates{channel="sms"}'] == 1  # counted: the first request might yet arrive


async def test_without_a_status_api_the_resend_carries_the_key_and_is_counted(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, sms_timeout_s=1.0, sms_http_status_url="")
    await put_customers(redis, s, make_customer("ns1"))
    sms_gw.slow_next, sms_gw.slow_s = 1, 2.5
    async with run_notifier(s, consume=False) as n:
        (nid,) = await _post_alerts(n.client, tokens.ops, ["ns1"])
        await _views_when_done(n.client, tokens.ops, [nid])
        text = (await n.client.get("/metrics", headers=Tokens.h(tokens.ops))).text
    assert metric_value(text, "meterwatch_notifier_possible_duplicates_total", channel="sms") == 1
    assert metric_value(text, "meterwatch_notifier_unknown_outcomes_total", channel="sms") == 1
    assert metric_value(text, "meterwatch_notifier_sms_reconciled_total", outcome="unsupported") == 1
    assert sms_gw.refs() == [nid, nid]  # the same Idempotency-Key: a gateway that honours it drops it
    assert all(r.headers["Idempotency-Key"] == nid for r in sms_gw.requests)
    m = await _metrics(redis, s)
    assert m['possible_duplicates{channel="sms"}'] == 1
    assert m['sms_reconciled{outcome="unsupported"}'] == 1


async def test_an_unknown_outcome_at_the_last_attempt_is_settled_before_failing(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(
        mw_settings, sms_gw, push_gw, sms_timeout_s=1.0, delivery_max_attempts=1, notifier_lease_s=3.0
    )
    await put_customers(redis, s, make_customer("la1"))
    sms_gw.slow_next, sms_gw.slow_s = 1, 2.5
    async with run_notifier(s, consume=False) as n:
        (nid,) = await _post_alerts(n.client, tokens.ops, ["la1"])
        (view,) = await _views_when_done(n.client, tokens.ops, [nid])
    assert view["status"] == "sent" and sms_gw.refs() == [nid]  # not "failed" and escalated
    assert not [b for b in push_gw.bodies() if b.get("kind") == "escalation"]


async def test_an_sms_whose_outcome_is_being_settled_cannot_be_cancelled(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    import datetime as dt

    from notifier.clock import FixedClock

    s = notifier_settings(mw_settings, sms_gw, push_gw, sms_timeout_s=1.0, sms_status_recheck_s=1.0)
    await put_customers(redis, s, make_customer("cx1"))
    sms_gw.slow_next, sms_gw.slow_s = 1, 2.5
    clock = FixedClock(dt.datetime(2025, 1, 21, 3, 0, tzinfo=dt.UTC))
    async with run_notifier(s, clock=clock, consume=False) as n:
        (nid,) = await _post_alerts(n.client, tokens.ops, ["cx1"])
        (view,) = await _views_when_done(n.client, tokens.ops, [nid], want="retrying")
        assert view["reason"] == "delivery.unknown"
        r = await n.client.post(f"/v1/notifications/{nid}/cancel", headers=Tokens.h(tokens.mgr1))
        assert r.status_code == 409 and "being settled" in r.json()["detail"]
        clock.advance(1.5)  # the gateway is asked: it has the SMS
        (view,) = await _views_when_done(n.client, tokens.ops, [nid])
    assert sms_gw.refs() == [nid]
