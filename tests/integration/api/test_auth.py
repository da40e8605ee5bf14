"""The full authentication / authorisation matrix of the Ops API, on the real Redis."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from api.app import create_app
from meterwatch.auth import revoke_token
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import ReadModel, Tokens

pytestmark = pytest.mark.integration

OWN = "c-a"  # managed by mgr-a
OTHER = "c-b"  # managed by mgr-b
MISSING = "c-nobody"

CUSTOMER_PATHS = [
    "/v1/customers/{id}/baseline",
    "/v1/customers/{id}/alerts",
    "/v1/customers/{id}",
]


def h(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
async def seeded(rm: ReadModel) -> ReadModel:
    for cid, mgr in ((OWN, "mgr-a"), (OTHER, "mgr-b")):
        await rm.customer(cid, mgr)
        await rm.baseline(cid, mgr)
        await rm.alert(cid, mgr, "sudden_increase", 3)
    await rm.segments()
    await rm.heartbeat()
    await rm.redis.hset(rm.keys.metrics("worker"), mapping={"readings_processed_total": 7})
    return rm


def _bad_tokens(tokens: Tokens) -> dict[str, dict[str, str]]:
    return {
        "none": {},
        "malformed": h("not-a-token"),
        "unknown": h("mw_0123456789ab_doesnotexistdoesnotexist"),
        "expired": h(tokens.expired),
        "revoked": h(tokens.revoked),
        "basic-scheme": {"Authorization": f"Basic {tokens.ops}"},
        "empty-bearer": {"Authorization": "Bearer "},
    }


async def test_no_valid_token_gets_401_everywhere_but_health(
    client: httpx.AsyncClient, tokens: Tokens, seeded: ReadModel
) -> None:
    protected = [p.format(id=OWN) for p in CUSTOMER_PATHS] + [
        f"/v1/baselines?customer_id={OWN}",
        "/v1/segments",
        "/metrics",
        "/openapi.json",
    ]
    for name, headers in _bad_tokens(tokens).items():
        for path in protected:
            r = await client.get(path, headers=headers)
            assert r.status_code == 401, (name, path, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer"), (name, path)
            body = r.json()
            assert body["error"] == "unauthorized" and body["message"], (name, path)
        for path in ("/healthz", "/readyz"):
            r = await client.get(path, headers=headers)
            assert r.status_code == 200, (name, path, r.text)


async def test_ops_reads_every_customer_and_metrics(
    client: httpx.AsyncClient, tokens: Tokens, seeded: ReadModel
) -> None:
    for cid in (OWN, OTHER):
        for p in CUSTOMER_PATHS:
            r = await client.get(p.format(id=cid), headers=h(tokens.ops))
            assert r.status_code == 200, (p, cid, r.text)
            assert r.json()["customer_id"] == cid
    for path in ("/v1/segments", "/metrics", "/openapi.json"):
        assert (await client.get(path, headers=h(tokens.ops))).status_code == 200, path
    for p in CUSTOMER_PATHS:
        r = await client.get(p.format(id=MISSING), headers=h(tokens.ops))
        assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.parametrize(("who", "own", "other"), [("mgr_a", OWN, OTHER), ("mgr_b", OTHER, OWN)])
async def test_manager_sees_only_own_customers(
    client: httpx.AsyncClient, tokens: Tokens, seeded: ReadModel, who: str, own: str, other: str
) -> None:
    token = getattr(tokens, who)
    for p in CUSTOMER_PATHS:
        r = await client.get(p.format(id=own), headers=h(token))
        assert r.status_code == 200, (p, r.text)
        hidden = await client.get(p.format(id=other), headers=h(token))
        missing = await client.get(p.format(id=MISSING), headers=h(token))
        assert hidden.status_code == missing.status_code == 404, p
        # existence must not leak: same status, same headers, same body up to the id asked for
        assert hidden.json()["message"].replace(other, "X") == missing.json()["message"].replace(MISSING, "X")
        assert hidden.json()["error"] == missing.json()["error"]
        assert sorted(hidden.headers) == sorted(missing.headers)
        assert len(hidden.content) - len(other) == len(missing.content) - len(MISSING)
    assert (await client.get("/v1/segments", headers=h(token))).status_code == 200
    assert (await client.get("/openapi.json", headers=h(token))).status_code == 200
    r = await client.get("/metrics", headers=h(token))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_unassigned_customer_is_ops_only(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.customer("c-free", None)
    await rm.baseline("c-free", None)
    assert (await client.get("/v1/customers/c-free/baseline", headers=h(tokens.ops))).status_code == 200
    for t in (tokens.mgr_a, tokens.mgr_b):
        assert (await client.get("/v1/customers/c-free/baseline", headers=h(t))).status_code == 404


async def test_registry_record_decides_the_manager(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    # The customer moved from mgr-a to mgr-b; the baseline snapshot still names mgr-a.
    await rm.customer("c-moved", "mgr-b")
    await rm.baseline("c-moved", "mgr-a")
    path = "/v1/customers/c-moved/baseline"
    assert (await client.get(path, headers=h(tokens.mgr_a))).status_code == 404
    assert (await client.get(path, headers=h(tokens.mgr_b))).status_code == 200
    # ... and then was left without a manager: ops only, whatever the snapshot says
    await rm.customer("c-moved", None)
    for p in CUSTOMER_PATHS:
        for t in (tokens.mgr_a, tokens.mgr_b):
            r = await client.get(p.format(id="c-moved"), headers=h(t))
            assert r.status_code == 404, p
        assert (await client.get(p.format(id="c-moved"), headers=h(tokens.ops))).status_code == 200


async def test_revocation_takes_effect_within_the_cache_bound(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, seeded: ReadModel
) -> None:
    from meterwatch.auth import create_token

    token, rec = await create_token(redis, keys, "ops")
    path = f"/v1/customers/{OWN}/baseline"
    assert (await client.get(path, headers=h(token))).status_code == 200
    assert await revoke_token(redis, keys, rec.token_id)
    await asyncio.sleep(0.25)  # api_token_cache_s = 0.2 in these tests
    r = await client.get(path, headers=h(token))
    assert r.status_code == 401


async def test_verified_tokens_are_cached_in_process(
    api_settings: Settings, tokens: Tokens, redis: Redis, keys: Keys, seeded: ReadModel
) -> None:
    from meterwatch.auth import create_token

    app: FastAPI = create_app(api_settings.model_copy(update={"api_token_cache_s": 60.0}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            token, rec = await create_token(redis, keys, "ops")
            path = f"/v1/customers/{OWN}/baseline"
            assert (await c.get(path, headers=h(token))).status_code == 200
            await revoke_token(redis, keys, rec.token_id)
            # documented: revocation is seen after at most MW_API_TOKEN_CACHE_S (here 60 s)
            assert (await c.get(path, headers=h(token))).status_code == 200
            app.state.runtime.tokens.clear()
            assert (await c.get(path, headers=h(token))).status_code == 401
    finally:
        await app.state.runtime.aclose()


async def test_rate_limit_per_token(api_settings: Settings, tokens: Tokens, seeded: ReadModel) -> None:
    app: FastAPI = create_app(api_settings.model_copy(update={"api_rate_limit_per_min": 3}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            path = f"/v1/customers/{OWN}/baseline"
            codes = [(await c.get(path, headers=h(tokens.ops))).status_code for _ in range(3)]
            assert codes == [200, 200, 200]
            r = await c.get(path, headers=h(tokens.ops))
            if r.status_code == 200:  # the minute window rolled over between requests: once more
                for _ in range(3):
                    r = await c.get(path, headers=h(tokens.ops))
            assert r.status_code == 429
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert r.json()["error"] == "rate_limited"
            # other endpoints share the token's budget; other tokens have their own
            assert (await c.get("/v1/segments", headers=h(tokens.ops))).status_code == 429
            assert (await c.get(f"/v1/customers/{OWN}/baseline", headers=h(tokens.mgr_a))).status_code == 200
    finally:
        await app.state.runtime.aclose()


async def test_rate_limit_is_shared_by_api_processes_through_redis(
    api_settings: Settings, tokens: Tokens, seeded: ReadModel
) -> None:
    limited = api_settings.model_copy(update={"api_rate_limit_per_min": 4})
    one: FastAPI = create_app(limited)
    two: FastAPI = create_app(limited)  # a second API process on the same Redis
    path = f"/v1/customers/{OWN}/baseline"
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://one") as c1,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://two") as c2,
        ):
            into_minute = time.time() % 60
            if into_minute > 55:  # keep the whole test inside one minute window
                await asyncio.sleep(60.1 - into_minute)
            assert [(await c1.get(path, headers=h(tokens.ops))).status_code for _ in range(3)] == [200] * 3
            await asyncio.sleep(0.5)  # process one has synced its 3 to Redis
            assert (await c2.get(path, headers=h(tokens.ops))).status_code == 200  # the 4th overall
            await asyncio.sleep(0.5)  # process two has learnt the shared total
            r = await c2.get(path, headers=h(tokens.ops))
            assert r.status_code == 429, r.text
            # process one still believes 3 were used: it admits one more (the documented
            # cross-process slack of one sync interval), learns the total, then refuses
            assert (await c1.get(path, headers=h(tokens.ops))).status_code == 200
            await asyncio.sleep(0.5)
            assert (await c1.get(path, headers=h(tokens.ops))).status_code == 429
    finally:
        await one.state.runtime.aclose()
        await two.state.runtime.aclose()
