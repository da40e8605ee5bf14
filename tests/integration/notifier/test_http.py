"""The notifier's HTTP surface: tokens everywhere but health, manager scoping, SSE, bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.auth import create_token, revoke_token
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import Tokens, make_alert, make_customer, put_customers, run_notifier, wait_until
from .fakes import FakeGateway

pytestmark = pytest.mark.integration


async def test_every_endpoint_but_health_needs_a_valid_token(
    nsettings: Settings, redis: Redis, tokens: Tokens
) -> None:
    async with run_notifier(nsettings, consume=False) as n:
        c = n.client
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).json()["checks"] == {"redis": True}
        calls = [
            ("GET", "/metrics"),
            ("POST", "/v1/alerts"),
            ("GET", "/v1/managers/mgr-1/inbox"),
            ("GET", "/v1/notifications/n_x"),
            ("GET", "/v1/alerts/a/notifications"),
            ("PUT", "/v1/customers/c1/sms-consent"),
            ("GET", "/v1/customers/c1/sms-consent"),
            ("POST", "/v1/sms/inbound"),
            ("PUT", "/v1/managers/mgr-1/profile"),
            ("POST", "/v1/notifications/n_x/release"),
            ("GET", "/openapi.json"),
        ]
        for method, path in calls:
            for hdr in ({}, {"Authorization": "Bearer mw_nope_nope"}, {"Authorization": "Basic abc"}):
                r = await c.request(method, path, headers=hdr, json={})
                assert r.status_code == 401, (method, path, hdr, r.status_code)
                assert "detail" in r.json()
        # no open documentation pages; the spec is there for a token holder
        assert (await c.get("/docs")).status_code == 404 and (await c.get("/redoc")).status_code == 404
        # a revoked token stops working
        tok, rec = await create_token(redis, Keys(nsettings.redis_prefix), "ops")
        assert (await c.get("/metrics", headers=Tokens.h(tok))).status_code == 200
        assert "/v1/alerts" in (await c.get("/openapi.json", headers=Tokens.h(tok))).json()["paths"]
        await revoke_token(redis, Keys(nsettings.redis_prefix), rec.token_id)
        assert (await c.get("/metrics", headers=Tokens.h(tok))).status_code == 401


async def test_manager_sees_only_own_inbox_and_notifications(
    nsettings: Settings, redis: Redis, tokens: Tokens, sms_gw: FakeGateway
) -> None:
    await put_customers(
        redis,
        nsettings,
        make_customer("a1", manager_id="mgr-1"),
        make_customer("b1", phone="+8613800000002", manager_id="mgr-2"),
    )
    async with run_notifier(nsettings, consume=False) as n:
        c, ops = n.client, Tokens.h(tokens.ops)
        # a manager token may not post alerts; bad bodies are 422 with a JSON message
        r = await c.post("/v1/alerts", content=make_alert("a1").to_json(), headers=Tokens.h(tokens.mgr1))
        assert r.status_code == 403 and r.json()["detail"] == "this endpoint needs an ops token"
        r = await c.post("/v1/alerts", content=b'{"alert_id": 1}', headers=ops)
        assert r.status_code == 422 and isinstance(r.json()["detail"], list)
        r = await c.post("/v1/alerts", content=b"not json", headers=ops)
        assert r.status_code == 422
        ra = await c.post("/v1/alerts", content=make_alert("a1", manager_id="mgr-1").to_json(), headers=ops)
        rb = await c.post("/v1/alerts", content=make_alert("b1", manager_id="mgr-2").to_json(), headers=ops)
        nid_a = ra.json()["notifications"][0]["notification_id"]
        nid_b = rb.json()["notifications"][0]["notification_id"]
        m1 = Tokens.h(tokens.mgr1)
        inbox = await c.get("/v1/managers/mgr-1/inbox", headers=m1)
        assert [i["customer_id"] for i in inbox.json()["items"]] == ["a1"]
        assert (await c.get("/v1/managers/mgr-2/inbox", headers=m1)).status_code == 403
        assert (await c.get("/v1/managers/mgr-2/inbox", headers=ops)).json()["items"][0][
            "customer_id"
        ] == "b1"
        assert (await c.get(f"/v1/notifications/{nid_a}", headers=m1)).status_code == 200
        assert (await c.get(f"/v1/notifications/{nid_b}", headers=m1)).status_code == 404
        assert (
            await c.get(f"/v1/alerts/{rb.json()['alert_id']}/notifications", headers=m1)
        ).status_code == 404
        assert (await c.get("/v1/managers/mgr-1/inbox?limit=0", headers=m1)).status_code == 422
        # the manager profile names the person to call in the next SMS
        assert (
            await c.put(
                "/v1/managers/mgr-1/profile", json={"name": "李娜", "phone": "13812345678"}, headers=m1
            )
        ).status_code == 403
        r = await c.put(
            "/v1/managers/mgr-1/profile", json={"name": "李娜", "phone": "13812345678"}, headers=ops
        )
        assert r.status_code == 200
        await put_customers(redis, nsettings, make_customer("a2", phone="+8613800000003", manager_id="mgr-1"))
        r = await c.post("/v1/alerts", content=make_alert("a2").to_json(), headers=ops)
        sms = {x["channel"]: x["notification_id"] for x in r.json()["notifications"]}["sms"]
        view = (await c.get(f"/v1/notifications/{sms}", headers=m1)).json()
    assert "李娜13812345678" in view["text"]
    assert view["segments"] == 1
    assert view["phone"] == "+86*******0003"


async def _read_events(resp: httpx.Response, want: int, out: list[dict[str, Any]]) -> None:
    event: dict[str, Any] = {}
    async for line in resp.aiter_lines():
        if line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("id: "):
            event["id"] = line[4:]
        elif line == "" and "data" in event:
            out.append(event)
            event = {}
            if len(out) >= want:
                return


async def test_inbox_live_stream_and_resume(nsettings: Settings, redis: Redis, tokens: Tokens) -> None:
    await put_customers(redis, nsettings, make_customer("e1"), make_customer("e2", phone="+8613800000009"))
    async with run_notifier(nsettings, consume=False) as n:
        got: list[dict[str, Any]] = []
        hdr = {**Tokens.h(tokens.mgr1), "Accept": "text/event-stream"}
        async with n.client.stream("GET", "/v1/managers/mgr-1/inbox", headers=hdr) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_read_events(resp, 2, got))
            hub = n.app.state.hub
            await wait_until(lambda: hub.up and hub.total == 1, what="the stream registered at the hub")
            for cid in ("e1", "e2"):
                await n.client.post(
                    "/v1/alerts", content=make_alert(cid).to_json(), headers=Tokens.h(tokens.ops)
                )
            await asyncio.wait_for(reader, timeout=10)
        assert [e["data"]["customer_id"] for e in got] == ["e1", "e2"]
        assert all(e["event"] == "alert" for e in got)
        # reconnect with Last-Event-ID: the missed item is replayed
        resumed: list[dict[str, Any]] = []
        hdr2 = {**hdr, "Last-Event-ID": str(int(got[0]["id"]))}
        async with n.client.stream("GET", "/v1/managers/mgr-1/inbox", headers=hdr2) as resp:
            await asyncio.wait_for(_read_events(resp, 1, resumed), timeout=10)
        assert resumed[0]["data"]["customer_id"] == "e2"
        # another manager cannot open the stream
        r = await n.client.get(
            "/v1/managers/mgr-1/inbox", headers={**Tokens.h(tokens.mgr2), "Accept": "text/event-stream"}
        )
        assert r.status_code == 403


async def test_redis_down_gives_503_json_and_alerts_wait_in_kafka(
    nsettings: Settings,
    redis: Redis,
    tokens: Tokens,
    sms_gw: FakeGateway,
    kafka_producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A notifier pointed at a Redis that does not answer: HTTP says 503, nothing is consumed for good."""
    await put_customers(redis, nsettings, make_customer("z1"))
    alert = make_alert("z1")
    await kafka_producer.send_and_wait(nsettings.topic_alerts, alert.to_json(), key=b"z1")
    dead = nsettings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with run_notifier(dead) as n:
        r = await n.client.get("/metrics", headers=Tokens.h(tokens.ops))
        assert r.status_code == 503 and r.json()["detail"].startswith("storage unavailable")
        assert (await n.client.get("/readyz")).status_code == 503
        # the consumer reads the alert but cannot record it
        await wait_until(lambda: "1 alerts wait in Kafka" in caplog.text, timeout=10, what="the alert waits")
    assert sms_gw.requests == []
    # the same group, with Redis back: the alert was not committed, so it is delivered now
    async with run_notifier(nsettings):
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)
    assert len(sms_gw.requests) == 1
