"""The workbench's JSON API on the real Redis: alerts across customers, lifecycle, daily series,
segment members, and the API docs behind authentication."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from meterwatch import dailyarchive
from meterwatch.alertindex import AlertIndexer
from meterwatch.keys import Keys
from tests.integration.api.conftest import ReadModel, Tokens, bearer, make_alert

pytestmark = pytest.mark.integration


async def seed_alert(
    redis: Redis,
    keys: Keys,
    cid: str,
    mid: str | None,
    rule: str,
    day: int,
    severity: str = "warning",
    ratio: float = 2.0,
    money: dict[str, Any] | None = None,
    segment: int = 2,
) -> str:
    a = make_alert(cid, mid, rule, day)
    doc = orjson.loads(a.to_json())
    doc.update(severity=severity, segment={"id": segment, "label": f"s{segment}"})
    doc["observed"]["ratio"] = ratio
    if money is not None:
        doc["money"] = money
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(keys.alerts(cid), {a.alert_id: a.triggered_by.timestamp()})
    pipe.hset(keys.alert_bodies(cid), a.alert_id, orjson.dumps(doc))
    await AlertIndexer(redis, keys).queue(
        pipe, a.alert_id, cid, mid, a.triggered_by.timestamp(), rule, severity
    )
    await pipe.execute()
    return a.alert_id


@pytest.fixture
async def world(rm: ReadModel, redis: Redis, keys: Keys) -> dict[str, str]:
    for cid, mid in (("a1", "mgr-a"), ("a2", "mgr-a"), ("a3", "mgr-a"), ("b1", "mgr-b")):
        await rm.customer(cid, mid, name=f"Name {cid}")
        await rm.baseline(cid, mid)
    ids = {
        "a1_warn": await seed_alert(redis, keys, "a1", "mgr-a", "sudden_increase", 3, ratio=3.5),
        "a2_crit": await seed_alert(
            redis, keys, "a2", "mgr-a", "sustained_drop", 4, severity="critical", ratio=0.1
        ),
        "a3_money": await seed_alert(
            redis,
            keys,
            "a3",
            "mgr-a",
            "projected_over_same_period",
            5,
            ratio=1.4,
            money={"currency": "CNY", "to_date": 50.0, "extra_vs_same_period": 80.0},
        ),
        "a1_info": await seed_alert(
            redis, keys, "a1", "mgr-a", "same_period_reached", 6, severity="info", segment=3
        ),
        "b1_crit": await seed_alert(
            redis, keys, "b1", "mgr-b", "sudden_increase", 7, severity="critical", ratio=5.0
        ),
    }
    return ids


async def _ids(client: Any, token: str, **params: Any) -> list[str]:
    r = await client.get("/v1/alerts", params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    return [i["alert_id"] for i in r.json()["items"]]


async def test_ranking_and_manager_scoping(client: Any, tokens: Tokens, world: dict[str, str]) -> None:
    w = world
    # critical first; within warning, money at stake before ratio; info last
    assert await _ids(client, tokens.mgr_a) == [w["a2_crit"], w["a3_money"], w["a1_warn"], w["a1_info"]]
    assert await _ids(client, tokens.mgr_b) == [w["b1_crit"]]
    assert await _ids(client, tokens.ops) == [
        w["b1_crit"],
        w["a2_crit"],
        w["a3_money"],
        w["a1_warn"],
        w["a1_info"],
    ]
    assert await _ids(client, tokens.mgr_a, manager_id="mgr-b") == []  # not theirs: nothing
    assert await _ids(client, tokens.ops, manager_id="mgr-b") == [w["b1_crit"]]
    assert (await _ids(client, tokens.ops, sort="newest"))[:2] == [w["b1_crit"], w["a1_info"]]


async def test_filters(client: Any, tokens: Tokens, world: dict[str, str]) -> None:
    w = world
    assert await _ids(client, tokens.ops, rule="sudden_increase") == [w["b1_crit"], w["a1_warn"]]
    assert await _ids(client, tokens.ops, severity="critical") == [w["b1_crit"], w["a2_crit"]]
    assert await _ids(client, tokens.ops, segment=3) == [w["a1_info"]]
    assert await _ids(client, tokens.ops, since="2025-01-05T00:00:00Z", until="2025-01-06T23:00:00Z") == [
        w["a3_money"],
        w["a1_info"],
    ]
    assert await _ids(client, tokens.ops, status="resolved") == []
    r = await client.get("/v1/alerts", params={"status": "closed"}, headers=bearer(tokens.ops))
    assert r.status_code == 422


async def test_cursor_pages_cover_everything_once(client: Any, tokens: Tokens, world: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/alerts", params=params, headers=bearer(tokens.ops))).json()
        seen += [i["alert_id"] for i in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == await _ids(client, tokens.ops)
    bad = await client.get("/v1/alerts", params={"cursor": "garbage"}, headers=bearer(tokens.ops))
    assert bad.status_code == 422 and "cursor" in bad.json()["message"]


async def test_lifecycle(client: Any, tokens: Tokens, world: dict[str, str]) -> None:
    aid = world["a1_warn"]
    r = await client.post(f"/v1/alerts/{aid}/ack", headers=bearer(tokens.mgr_a))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == "mgr-a"
    again = await client.post(f"/v1/alerts/{aid}/ack", headers=bearer(tokens.mgr_a))
    assert again.status_code == 409 and "already acknowledged" in again.json()["message"]
    r = await client.post(
        f"/v1/alerts/{aid}/outcome", json={"outcome": "no_answer"}, headers=bearer(tokens.mgr_a)
    )
    assert r.json()["status"] == "acknowledged" and r.json()["attempts"] == 1
    note = "新洗衣机 <b>&'\""
    r = await client.post(
        f"/v1/alerts/{aid}/outcome",
        json={"outcome": "explained_appliance", "note": note},
        headers=bearer(tokens.ops),
    )
    body = r.json()
    assert body["status"] == "resolved" and body["note"] == note and body["outcome_by"].startswith("ops:")
    assert [(e["action"], e["from"], e["to"]) for e in body["history"]] == [
        ("ack", "open", "acknowledged"),
        ("outcome", "acknowledged", "acknowledged"),
        ("outcome", "acknowledged", "resolved"),
    ]
    late = await client.post(
        f"/v1/alerts/{aid}/outcome", json={"outcome": "reached"}, headers=bearer(tokens.mgr_a)
    )
    assert late.status_code == 409
    assert await _ids(client, tokens.mgr_a, status="resolved") == [aid]
    assert aid not in await _ids(client, tokens.mgr_a, status="open")
    listed = (
        await client.get("/v1/alerts", params={"status": "resolved"}, headers=bearer(tokens.ops))
    ).json()
    assert listed["items"][0]["lifecycle"]["outcome"] == "explained_appliance"


async def test_lifecycle_from_open_straight_to_resolved(
    client: Any, tokens: Tokens, world: dict[str, str]
) -> None:
    aid = world["a3_money"]
    r = await client.post(
        f"/v1/alerts/{aid}/outcome", json={"outcome": "reached"}, headers=bearer(tokens.mgr_a)
    )
    assert r.json()["status"] == "resolved" and r.json()["acknowledged_by"] == "mgr-a"


async def test_lifecycle_refuses_others_and_bad_input(
    client: Any, tokens: Tokens, world: dict[str, str]
) -> None:
    other = world["b1_crit"]
    r = await client.post(f"/v1/alerts/{other}/ack", headers=bearer(tokens.mgr_a))
    unknown = await client.post("/v1/alerts/nope/ack", headers=bearer(tokens.mgr_a))
    assert r.status_code == unknown.status_code == 404
    assert r.json()["message"].replace(other, "X") == unknown.json()["message"].replace("nope", "X")
    aid = world["a1_warn"]
    long_note = await client.post(
        f"/v1/alerts/{aid}/outcome",
        json={"outcome": "reached", "note": "x" * 1001},
        headers=bearer(tokens.mgr_a),
    )
    assert long_note.status_code == 422
    wrong = await client.post(
        f"/v1/alerts/{aid}/outcome", json={"outcome": "maybe"}, headers=bearer(tokens.mgr_a)
    )
    assert wrong.status_code == 422
    assert (await client.post(f"/v1/alerts/{aid}/ack")).status_code == 401


async def test_daily_series(client: Any, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys) -> None:
    await rm.customer("d1", "mgr-a")
    end = dt.date(2025, 3, 31)
    recs = [
        dailyarchive.DayRecord((end - dt.timedelta(days=i)).toordinal(), 10.0 + i, 9.0, 4.0, 15.0)
        for i in range(120)
    ]
    recs.append(dailyarchive.DayRecord(dt.date(2024, 3, 31).toordinal(), 6.5))
    for off, data in dailyarchive.writes(recs):
        await redis.setrange(keys.daily("d1"), off, data)
    body = (await client.get("/v1/customers/d1/daily", headers=bearer(tokens.mgr_a))).json()
    days = body["days"]
    assert len(days) == 90 and days[-1]["day"] == "2025-03-31" and days[0]["day"] == "2025-01-01"
    assert days[-1] == {
        "day": "2025-03-31",
        "kwh": 10.0,
        "expected_kwh": 9.0,
        "band_low": 4.0,
        "band_high": 15.0,
        "last_year_kwh": 6.5,
        "cost": None,
    }
    r = await client.get(
        "/v1/customers/d1/daily",
        params={"from": "2025-03-01", "to": "2025-03-02"},
        headers=bearer(tokens.ops),
    )
    assert [d["kwh"] for d in r.json()["days"]] == [40.0, 39.0]
    gap = await client.get(
        "/v1/customers/d1/daily",
        params={"from": "2025-04-01", "to": "2025-04-01"},
        headers=bearer(tokens.ops),
    )
    assert gap.json()["days"][0]["kwh"] is None
    too_long = await client.get(
        "/v1/customers/d1/daily",
        params={"from": "2020-01-01", "to": "2025-01-01"},
        headers=bearer(tokens.ops),
    )
    assert too_long.status_code == 422
    assert (await client.get("/v1/customers/d1/daily", headers=bearer(tokens.mgr_b))).status_code == 404


async def test_daily_cost_follows_the_customers_tier(
    client: Any, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    """Priced under the customer's annual-tier plan: 20 kWh a day from 1 January reaches the
    2,760 kWh of tier 1 after 138 days (18 May), so from 19 May a day costs 20 x (0.5283 + 0.05)."""
    await rm.customer("d2", "mgr-a", tariff_plan="cn-js-residential")
    first = dt.date(2025, 1, 1)
    recs = [dailyarchive.DayRecord(first.toordinal() + i, 20.0) for i in range(160)]
    for off, data in dailyarchive.writes(recs):
        await redis.setrange(keys.daily("d2"), off, data)
    r = await client.get(
        "/v1/customers/d2/daily",
        params={"from": "2025-05-15", "to": "2025-05-22"},
        headers=bearer(tokens.mgr_a),
    )
    assert r.status_code == 200, r.text
    assert [d["cost"] for d in r.json()["days"]] == [10.57] * 4 + [11.57] * 4
    # a customer without a plan (and no default plan for its category) has no cost
    await rm.customer("d3", "mgr-a")
    for off, data in dailyarchive.writes([dailyarchive.DayRecord(first.toordinal(), 20.0)]):
        await redis.setrange(keys.daily("d3"), off, data)
    r = await client.get(
        "/v1/customers/d3/daily",
        params={"from": "2025-01-01", "to": "2025-01-01"},
        headers=bearer(tokens.ops),
    )
    assert r.json()["days"][0]["cost"] is None and r.json()["days"][0]["kwh"] == 20.0


async def test_segment_members_paged_and_scoped(
    client: Any, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    for i in range(7):
        cid = f"s{i}"
        await rm.customer(cid, "mgr-a" if i % 2 == 0 else "mgr-b", name=f"N{i}")
        await redis.zadd(keys.segment_members(4), {cid: 0})
    got: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (
            await client.get("/v1/segments/4/customers", params=params, headers=bearer(tokens.ops))
        ).json()
        got += [m["customer_id"] for m in body["items"]]
        cursor = body["next"]
        if not cursor:
            break
    assert got == [f"s{i}" for i in range(7)]
    mine = (await client.get("/v1/segments/4/customers", headers=bearer(tokens.mgr_a))).json()
    assert [m["customer_id"] for m in mine["items"]] == ["s0", "s2", "s4", "s6"]
    assert "phone" not in mine["items"][0]


async def test_docs_and_openapi_need_authentication(client: Any, tokens: Tokens) -> None:
    assert (await client.get("/openapi.json")).status_code == 401
    r = await client.get("/docs")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 401
    spec = (await client.get("/openapi.json", headers=bearer(tokens.mgr_a))).json()
    assert {"/v1/alerts", "/v1/alerts/{alert_id}/ack", "/v1/customers/{customer_id}/daily"} <= set(
        spec["paths"]
    )
    page = await client.get("/docs", headers=bearer(tokens.mgr_a))
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "<script>" not in page.text.replace("<script src=", "")  # no inline script
    js = await client.get("/docs/assets/swagger-ui-bundle.js", headers=bearer(tokens.mgr_a))
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text[:2000]
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_segment_members_backfill_and_stale_entries(
    client: Any, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    from api.routes.members import backfill_members

    await rm.customer("m1", "mgr-a")
    await rm.baseline("m1", "mgr-a")  # its snapshot names segment 2 (conftest)
    await rm.customer("m2", "mgr-a")
    await rm.baseline("m2", "mgr-a")
    assert await backfill_members(redis, keys) == 2
    assert await redis.zrange(keys.segment_members(2), 0, -1) == [b"m1", b"m2"]
    await redis.zadd(keys.segment_members(5), {"m1": 0, "gone": 0})  # stale: m1 is in 2, "gone" deleted
    body = (await client.get("/v1/segments/5/customers", headers=bearer(tokens.ops))).json()
    assert body["items"] == []
    assert await redis.zcard(keys.segment_members(5)) == 0


NEW_ENDPOINTS = [
    ("GET", "/v1/alerts"),
    ("POST", "/v1/alerts/{aid}/ack"),
    ("POST", "/v1/alerts/{aid}/outcome"),
    ("GET", "/v1/customers/a1/daily"),
    ("GET", "/v1/segments/2/customers"),
    ("GET", "/openapi.json"),
]


async def test_every_new_endpoint_needs_a_valid_token(
    client: Any, tokens: Tokens, world: dict[str, str]
) -> None:
    for method, path in NEW_ENDPOINTS:
        url = path.format(aid=world["a1_warn"])
        kw: dict[str, Any] = {"json": {"outcome": "reached"}} if url.endswith("/outcome") else {}
        for headers in ({}, bearer("mw_not-a-real-token"), {"Authorization": "Basic eDp5"}):
            r = await client.request(method, url, headers=headers, **kw)
            assert r.status_code == 401, (method, url, headers, r.text)
            assert r.json()["message"], (method, url)
    # nothing changed by the refused requests
    assert world["a1_warn"] in await _ids(client, tokens.ops, status="open")


async def test_another_managers_customer_is_404_on_every_new_endpoint(
    client: Any, tokens: Tokens, world: dict[str, str]
) -> None:
    b_alert = world["b1_crit"]
    for method, url, kw in (
        ("POST", f"/v1/alerts/{b_alert}/ack", {}),
        ("POST", f"/v1/alerts/{b_alert}/outcome", {"json": {"outcome": "reached"}}),
        ("GET", "/v1/customers/b1/daily", {}),
    ):
        r = await client.request(method, url, headers=bearer(tokens.mgr_a), **kw)
        assert r.status_code == 404 and r.json()["message"], (method, url, r.text)
    assert b_alert not in await _ids(client, tokens.mgr_a)
    members = await client.get("/v1/segments/2/customers", headers=bearer(tokens.mgr_a))
    assert "b1" not in {m["customer_id"] for m in members.json()["items"]}
    assert b_alert in await _ids(client, tokens.ops, status="open")  # still open: mgr-a changed nothing


@pytest.mark.parametrize(
    ("method", "url", "kw", "says"),
    [
        ("GET", "/v1/alerts?since=2025-01-06T00:00:00Z&until=2025-01-05T00:00:00Z", {}, "since"),
        ("GET", "/v1/alerts?since=yesterday", {}, "since"),
        ("GET", "/v1/alerts?limit=0", {}, "limit"),
        ("GET", "/v1/alerts?severity=loud", {}, "severity"),
        ("GET", "/v1/alerts?sort=newest&cursor=WyJyYW5rIl0", {}, "cursor"),
        ("POST", "/v1/alerts/{aid}/outcome", {"json": {}}, "outcome"),
        ("POST", "/v1/alerts/{aid}/outcome", {"content": b"not json"}, "JSON"),
        ("POST", "/v1/alerts/%20bad%20id/ack", {}, "alert_id"),
        ("GET", "/v1/customers/a1/daily?from=2025-03-02&to=2025-03-01", {}, "`from` is after `to`"),
        ("GET", "/v1/customers/a1/daily?from=March", {}, "from"),
        ("GET", "/v1/segments/-1/customers", {}, "segment_id"),
        ("GET", "/v1/segments/2/customers?cursor=%3Cx%3E", {}, "cursor"),
        ("GET", "/v1/segments/2/customers?limit=201", {}, "limit"),
    ],
)
async def test_invalid_input_is_a_4xx_with_a_message(
    client: Any, tokens: Tokens, world: dict[str, str], method: str, url: str, kw: dict[str, Any], says: str
) -> None:
    if "content" in kw:
        kw = {**kw, "headers": {**bearer(tokens.mgr_a), "Content-Type": "application/json"}}
    else:
        kw = {**kw, "headers": bearer(tokens.mgr_a)}
    r = await client.request(method, url.format(aid=world["a1_warn"]), **kw)
    assert 400 <= r.status_code < 500, r.text
    assert says.lower() in r.json()["message"].lower(), r.json()
