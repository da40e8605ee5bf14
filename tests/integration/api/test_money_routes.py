"""The tariff catalogue and a customer's budget over HTTP, against the real Redis and Kafka."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from meterwatch.contracts import CustomerRecord
from meterwatch.settings import Settings

pytestmark = pytest.mark.integration


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def money_client(api_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    s = api_settings.model_copy(update={"default_tariff_plans": {"commercial": "cn-commercial-flat"}})
    app = create_app(s)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            yield c, app
    finally:
        await app.state.registry.aclose()
        await app.state.runtime.aclose()


async def test_the_catalogue_for_ops_only(money_client, tokens):  # type: ignore[no-untyped-def]
    client, _ = money_client
    r = await client.get("/v1/tariffs", headers=h(tokens.ops))
    assert r.status_code == 200
    plans = {p["id"]: p for p in r.json()["tariffs"]}
    assert {"cn-js-residential", "cn-zj-residential-tou", "uk-london-standard"} <= set(plans)
    assert plans["cn-commercial-flat"]["default_for"] == ["commercial"]
    assert plans["uk-london-standard"]["in_force_from"] == "2013-12-01"
    assert plans["cn-js-residential"]["tier_period"] == "year"
    r = await client.get("/v1/tariffs/cn-js-residential", headers=h(tokens.ops))
    assert r.status_code == 200
    plan = r.json()
    assert plan["name"]["zh-CN"].startswith("江苏") and plan["currency"] == "CNY"
    assert [t["up_to_kwh"] for t in plan["versions"][0]["tiers"]] == ["2760", "4800", None]
    r = await client.get("/v1/tariffs/no-such-plan", headers=h(tokens.ops))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    for path in ("/v1/tariffs", "/v1/tariffs/cn-js-residential"):
        r = await client.get(path, headers=h(tokens.mgr_a))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert (await client.get(path)).status_code == 401


async def test_a_budget_is_published_as_the_full_registry_record(  # type: ignore[no-untyped-def]
    money_client, tokens, rm, redis, keys, api_settings, kafka_consume
):
    client, _ = money_client
    doc = {
        "customer_id": "c-1",
        "manager_id": "mgr-a",
        "tariff_plan": "cn-js-residential",
        "phone": "+8613800000001",
        "billing_ref": "X-77",  # a field this version does not know: kept as it is
    }
    await redis.set(keys.customer("c-1"), json.dumps(doc))
    body = {"amount": 200, "currency": "CNY"}
    r = await client.put("/v1/customers/c-1/budget", json=body, headers=h(tokens.mgr_a))
    assert r.status_code == 202, r.text
    assert r.json() == {
        "customer_id": "c-1",
        "budget": {"amount": 200.0, "currency": "CNY"},
        "plan_id": "cn-js-residential",
        "published": True,
    }
    r = await client.delete("/v1/customers/c-1/budget", headers=h(tokens.ops))
    assert r.status_code == 202 and r.json()["budget"] is None
    records = await kafka_consume(api_settings.topic_customers, 2)
    assert [rec.key for rec in records] == [b"c-1", b"c-1"]
    first, second = (json.loads(rec.value) for rec in records)
    assert first == {**doc, "budget": {"amount": 200.0, "currency": "CNY"}}
    assert second == doc
    assert CustomerRecord.model_validate(first).budget is not None


async def test_budget_is_refused_clearly(money_client, tokens, rm, redis, keys):  # type: ignore[no-untyped-def]
    client, _ = money_client
    await rm.customer("c-js", "mgr-a", tariff_plan="cn-js-residential")
    await rm.customer("c-none", "mgr-a")
    await rm.customer("c-com", "mgr-b", tariff="commercial")  # the commercial default applies
    put = client.put
    cny = {"amount": 200, "currency": "CNY"}
    r = await put("/v1/customers/c-js/budget", json=cny, headers=h(tokens.mgr_b))
    assert r.status_code == 404  # another manager's customer: as if unknown
    r = await put("/v1/customers/nobody/budget", json=cny, headers=h(tokens.ops))
    assert r.status_code == 404
    r = await put("/v1/customers/c-js/budget", json={"amount": 20, "currency": "GBP"}, headers=h(tokens.ops))
    assert r.status_code == 422 and r.json()["error"] == "currency_mismatch"
    r = await put("/v1/customers/c-none/budget", json=cny, headers=h(tokens.ops))
    assert r.status_code == 422 and r.json()["error"] == "no_tariff_plan"
    for bad in (
        {"amount": -5, "currency": "CNY"},
        {"amount": 1.234, "currency": "CNY"},
        {"amount": 5},
        {**cny, "x": 1},
    ):
        r = await put("/v1/customers/c-js/budget", json=bad, headers=h(tokens.ops))
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", bad
    r = await put("/v1/customers/c-com/budget", json=cny, headers=h(tokens.mgr_b))
    assert r.status_code == 202 and r.json()["plan_id"] == "cn-commercial-flat"


async def test_openapi_documents_the_money_routes(money_client, tokens):  # type: ignore[no-untyped-def]
    client, _ = money_client
    spec = (await client.get("/openapi.json", headers=h(tokens.ops))).json()
    assert {"put", "delete"} <= set(spec["paths"]["/v1/customers/{customer_id}/budget"])
    assert "get" in spec["paths"]["/v1/tariffs"] and "get" in spec["paths"]["/v1/tariffs/{plan_id}"]
    snap = spec["components"]["schemas"]["BaselineSnapshot"]["properties"]
    assert "money" in snap
