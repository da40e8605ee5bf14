"""`PUT /v1/customers/{id}/occupancy` (issue #15): move-in day and absences, published to the registry."""

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
async def client(api_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(api_settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
            yield c, app
    finally:
        await app.state.registry.aclose()
        await app.state.runtime.aclose()


async def test_a_move_in_and_absences_are_published_with_the_rest_of_the_record(  # type: ignore[no-untyped-def]
    client, tokens, redis, keys, api_settings, kafka_consume
):
    c, _ = client
    doc = {"customer_id": "c-1", "manager_id": "mgr-a", "occupancy": "rented", "billing_ref": "X-77"}
    await redis.set(keys.customer("c-1"), json.dumps(doc))
    away = [{"start": "2024-02-08", "end": "2024-02-18"}]
    r = await c.put(
        "/v1/customers/c-1/occupancy", json={"occupant_since": "2024-03-10"}, headers=h(tokens.mgr_a)
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"customer_id": "c-1", "occupant_since": "2024-03-10", "away": [], "published": True}
    await redis.set(keys.customer("c-1"), json.dumps({**doc, "occupant_since": "2024-03-10"}))  # as mirrored
    r = await c.put("/v1/customers/c-1/occupancy", json={"away": away}, headers=h(tokens.ops))
    assert r.status_code == 202 and r.json()["away"] == away and r.json()["occupant_since"] == "2024-03-10"
    records = await kafka_consume(api_settings.topic_customers, 2)
    first, second = (json.loads(rec.value) for rec in records)
    assert first == {**doc, "occupant_since": "2024-03-10"}
    assert second == {**doc, "occupant_since": "2024-03-10", "away": away}
    assert CustomerRecord.model_validate(second).away[0].end.isoformat() == "2024-02-18"


async def test_occupancy_changes_are_refused_clearly(client, tokens, rm):  # type: ignore[no-untyped-def]
    c, _ = client
    await rm.customer("c-a", "mgr-a")
    put = c.put
    ok = {"occupant_since": "2024-03-10"}
    assert (await put("/v1/customers/c-a/occupancy", json=ok, headers=h(tokens.mgr_b))).status_code == 404
    assert (await put("/v1/customers/nobody/occupancy", json=ok, headers=h(tokens.ops))).status_code == 404
    assert (await put("/v1/customers/c-a/occupancy", json=ok)).status_code == 401
    r = await put("/v1/customers/c-a/occupancy", json={"occupant_since": "2999-01-01"}, headers=h(tokens.ops))
    assert r.status_code == 422 and r.json()["error"] == "future_move_in"
    r = await put("/v1/customers/c-a/occupancy", json={}, headers=h(tokens.ops))
    assert r.status_code == 422 and r.json()["error"] == "empty_body"
    for bad in (
        {"occupant_since": "10/03/2024"},
        {"away": [{"start": "2024-02-18", "end": "2024-02-08"}]},
        {"away": [{"start": "2024-01-01", "end": "2024-01-02"}] * 25},
        {**ok, "x": 1},
    ):
        r = await put("/v1/customers/c-a/occupancy", json=bad, headers=h(tokens.ops))
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", (bad, r.text)
