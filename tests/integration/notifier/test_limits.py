"""The notifier's limits: request bodies, error answers, per-token rate, live streams (issue #10,
items 11 and 12)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from meterwatch.auth import create_token
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.clock import FixedClock

from .conftest import Tokens, make_alert, make_customer, put_customers, run_notifier, wait_until
from .fakes import FakeGateway

pytestmark = pytest.mark.integration
UTC = dt.UTC


async def test_an_oversized_body_is_refused_before_it_is_parsed(nsettings: Settings, tokens: Tokens) -> None:
    async with run_notifier(nsettings, consume=False) as n:
        h = Tokens.h(tokens.ops)
        big = b'{"alert_id": "' + b"x" * (50 * 1024 * 1024) + b'"}'  # 50 MB of JSON
        r = await n.client.post("/v1/alerts", content=big, headers=h, timeout=60)
        assert r.status_code == 413
        assert r.json() == {
            "detail": f"request body larger than {nsettings.notifier_max_body_bytes} bytes "
            "(MW_NOTIFIER_MAX_BODY_BYTES)"
        }

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it arrives
            for _ in range(64):
                yield b"y" * 16384

        r = await n.client.post("/v1/alerts", content=chunks(), headers=h)
        assert r.status_code == 413
        # the connection is still good for the next request
        assert (await n.client.get("/v1/rejected-alerts", headers=h)).status_code == 200


async def test_a_bad_body_is_answered_briefly_never_echoed(nsettings: Settings, tokens: Tokens) -> None:
    async with run_notifier(nsettings, consume=False) as n:
        h = Tokens.h(tokens.ops)
        secret = "s" * 200_000
        alert = json.loads(make_alert("c1").to_json())
        alert["customer_id"] = {"nested": secret}  # wrong type: the validator sees the whole value
        for body in (json.dumps(alert).encode(), b"{" + secret.encode(), json.dumps([secret] * 1).encode()):
            r = await n.client.post("/v1/alerts", content=body, headers=h)
            assert r.status_code == 422
            assert len(r.content) < 4096, len(r.content)
            assert "s" * 150 not in r.text
            assert all({"loc", "msg", "type"} == set(d) for d in r.json()["detail"])


async def test_each_token_is_rate_limited_per_minute(
    nsettings: Settings, redis: Redis, tokens: Tokens
) -> None:
    s = nsettings.model_copy(update={"notifier_rate_limit_per_min": 5})
    clock = FixedClock(dt.datetime(2025, 1, 21, 3, 0, 10, tzinfo=UTC))
    async with run_notifier(s, clock=clock, consume=False) as n:
        h1, h2 = Tokens.h(tokens.mgr1), Tokens.h(tokens.mgr2)
        codes = [(await n.client.get("/v1/managers/mgr-1/inbox", headers=h1)).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = await n.client.get("/v1/managers/mgr-1/profile", headers=h1)  # the budget is the token's
        assert r.status_code == 429
        assert r.headers["retry-after"] == "50"  # the minute ends at 03:01:00
        assert r.json()["detail"] == "rate limit of 5 requests per minute exceeded for this token"
        assert (await n.client.get("/v1/managers/mgr-2/inbox", headers=h2)).status_code == 200
        assert (await n.client.get("/healthz")).status_code == 200  # health is never limited
        clock.advance(50)  # the next minute: a new budget
        assert (await n.client.get("/v1/managers/mgr-1/inbox", headers=h1)).status_code == 200
        # the replicas share the count through Redis
        key = Keys(s.redis_prefix).ns(f"rl:{tokens_id(tokens.mgr1)}:{int(clock.now().timestamp()) // 60 - 1}")
        await wait_until(lambda: _count_is(redis, key, 5), timeout=5)


def tokens_id(token: str) -> str:
    from meterwatch.auth import parse_token_id

    tid = parse_token_id(token)
    assert tid is not None
    return tid


async def _count_is(redis: Redis, key: str, want: int) -> bool:
    return int(await redis.get(key) or 0) == want


#: the streams _open_streams opened: (status, response, context) triples
_Opened = list[tuple[int, httpx.Response, AbstractAsyncContextManager[httpx.Response]]]


async def _open_streams(
    url: str, headers: list[dict[str, str]], manager: str
) -> tuple[httpx.AsyncClient, _Opened]:
    """Open one live inbox stream per headers entry; returns (status, response, context) triples."""
    limits = httpx.Limits(max_connections=len(headers) + 10, max_keepalive_connections=0)
    client = httpx.AsyncClient(base_url=url, timeout=30, limits=limits)
    opened: _Opened = []
    for hdr in headers:
        ctx = client.stream(
            "GET", f"/v1/managers/{manager}/inbox", headers={**hdr, "Accept": "text/event-stream"}
        )
        resp = await ctx.__aenter__()
        if resp.status_code != 200:
            await resp.aread()
        opened.append((resp.status_code, resp, ctx))
    return client, opened


async def _close_streams(client: httpx.AsyncClient, opened: _Opened) -> None:
    for _status, _resp, ctx in opened:
        await ctx.__aexit__(None, None, None)
    await client.aclose()


async def _sse_clients(redis: Redis, name: str) -> int:
    clients = await redis.client_list()
    return sum(1 for c in clients if c.get("name") == name)


async def test_many_live_streams_are_capped_and_sending_still_works(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    from .conftest import notifier_settings

    s = notifier_settings(
        mw_settings, sms_gw, push_gw, notifier_sse_max_per_token=4, notifier_sse_max_streams=110
    )
    keys = Keys(s.redis_prefix)
    await put_customers(redis, s, make_customer("sse1"))
    async with run_notifier(s, consume=False) as n:
        # one manager token opens 120 streams (more than redis-py's pool of 100 once held)
        client, opened = await _open_streams(n.url, [Tokens.h(tokens.mgr1)] * 120, "mgr-1")
        try:
            statuses = [st for st, _r, _c in opened]
            assert statuses.count(200) == 4 and statuses.count(429) == 116
            refused = next(r for st, r, _c in opened if st == 429)
            assert "MW_NOTIFIER_SSE_MAX_PER_TOKEN" in refused.json()["detail"]
            assert refused.headers["retry-after"]
            # many tokens together reach the replica's cap: 503
            others = [Tokens.h((await create_token(redis, keys, "ops"))[0]) for _ in range(30)]
            client2, opened2 = await _open_streams(n.url, [h for h in others for _ in range(4)], "mgr-1")
            try:
                st2 = [st for st, _r, _c in opened2]
                assert st2.count(200) == 106 and st2.count(503) == 14
                refused = next(r for st, r, _c in opened2 if st == 503)
                assert "MW_NOTIFIER_SSE_MAX_STREAMS" in refused.json()["detail"]
                # 110 live streams, and ONE Redis pub/sub connection behind them
                assert await _sse_clients(redis, f"{s.redis_prefix}notifier-sse") == 1
                # sending works: the SMS and the push go out, and every stream gets the alert
                r = await n.client.post(
                    "/v1/alerts", content=make_alert("sse1").to_json(), headers=Tokens.h(tokens.ops)
                )
                assert r.status_code == 202
                assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)
                assert await asyncio.to_thread(push_gw.wait_requests, 1, 20)
                live = [resp for st, resp, _c in opened + opened2 if st == 200]
                events = await asyncio.gather(*(_first_event(resp) for resp in live))
                assert [e["customer_id"] for e in events] == ["sse1"] * 110
            finally:
                await _close_streams(client2, opened2)
        finally:
            await _close_streams(client, opened)
        # closed streams give their places back
        await wait_until(lambda: n.app.state.hub.total == 0, timeout=10)
        c3, op3 = await _open_streams(n.url, [Tokens.h(tokens.mgr1)] * 4, "mgr-1")
        assert [st for st, _r, _c in op3] == [200] * 4
        await _close_streams(c3, op3)


async def _first_event(resp: httpx.Response) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                event: dict[str, Any] = json.loads(line[6:])
                return event
        raise AssertionError("stream ended")

    return await asyncio.wait_for(read(), timeout=20)
