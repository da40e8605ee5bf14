"""What each endpoint answers, against the real Redis read model."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from meterwatch.contracts import Alert, BaselineSnapshot, SegmentSummary
from meterwatch.settings import Settings

from .conftest import ReadModel, Tokens

pytestmark = pytest.mark.integration


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_baseline_is_the_stored_snapshot(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    stored = await rm.baseline("MAC000002", "mgr-a", kwh=33.25)
    r = await client.get("/v1/customers/MAC000002/baseline", headers=h(tokens.ops))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    got = BaselineSnapshot.model_validate_json(r.content)
    assert got == stored
    assert got.cycle.cycle_to_date_kwh == 33.25 and len(got.baseline.cycles) == 24
    assert r.json()["manager_id"] == "mgr-a"  # kept in the public response: ops need it
    # a new flush by the worker is visible on the next request (no response caching)
    await rm.baseline("MAC000002", "mgr-a", kwh=40.0)
    r = await client.get("/v1/customers/MAC000002/baseline", headers=h(tokens.ops))
    assert r.json()["cycle"]["cycle_to_date_kwh"] == 40.0


@pytest.mark.parametrize(
    "bad",
    ["-starts-with-dash", "a" * 65, "with space", "semi;colon", "quote'", "ünicode", "a%2Fb", "%00"],
)
async def test_malformed_customer_id_is_422_json(client: httpx.AsyncClient, tokens: Tokens, bad: str) -> None:
    r = await client.get(f"/v1/customers/{bad}/baseline", headers=h(tokens.ops))
    assert r.status_code in (404, 422), r.text  # an encoded slash never reaches the route: 404
    body = r.json()
    assert body["message"]
    if r.status_code == 422:
        assert body["error"] == "invalid_request"
        assert body["details"][0]["loc"] == ["path", "customer_id"]


async def test_alerts_newest_first_with_limit_and_rule(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.customer("c1", "mgr-a")
    for day, rule in [
        (2, "sudden_increase"),
        (5, "same_period_reached"),
        (9, "sudden_increase"),
        (7, "sustained_drop"),
    ]:
        await rm.alert("c1", "mgr-a", rule, day)
    r = await client.get("/v1/customers/c1/alerts", headers=h(tokens.ops))
    assert r.status_code == 200
    body = r.json()
    alerts = [Alert.model_validate(a) for a in body["alerts"]]
    assert [a.triggered_by.day for a in alerts] == [9, 7, 5, 2]
    assert body["count"] == 4 and body["customer_id"] == "c1"
    assert body["alerts"][0]["explanation"]["zh-CN"]  # aliases kept as on the topic
    r = await client.get("/v1/customers/c1/alerts?limit=2", headers=h(tokens.ops))
    assert [a["triggered_by"][8:10] for a in r.json()["alerts"]] == ["09", "07"]
    r = await client.get("/v1/customers/c1/alerts?rule=sudden_increase&limit=1", headers=h(tokens.ops))
    assert [(a["rule"], a["triggered_by"][8:10]) for a in r.json()["alerts"]] == [("sudden_increase", "09")]
    r = await client.get("/v1/customers/c1/alerts?rule=sudden_increase", headers=h(tokens.mgr_a))
    assert r.json()["count"] == 2
    r = await client.get("/v1/customers/c1/alerts?rule=no_such_rule", headers=h(tokens.ops))
    assert r.status_code == 200 and r.json() == {"customer_id": "c1", "count": 0, "alerts": []}


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "rule=Bad-Rule", "limit=1.5"])
async def test_bad_alert_queries_are_422(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, query: str
) -> None:
    await rm.customer("c1", "mgr-a")
    r = await client.get(f"/v1/customers/c1/alerts?{query}", headers=h(tokens.ops))
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request" and "invalid request" in r.json()["message"]


async def test_alerts_of_known_customer_without_alerts_is_empty(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.baseline("quiet", "mgr-a")
    r = await client.get("/v1/customers/quiet/alerts", headers=h(tokens.mgr_a))
    assert r.status_code == 200 and r.json()["alerts"] == []


async def test_alert_trimmed_between_reads_is_skipped(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.customer("c1", "mgr-a")
    a = await rm.alert("c1", "mgr-a", "sudden_increase", 3)
    b = await rm.alert("c1", "mgr-a", "sudden_increase", 4)
    await rm.redis.hdel(rm.keys.alert_bodies("c1"), a.alert_id)  # id still in the ZSET
    r = await client.get("/v1/customers/c1/alerts", headers=h(tokens.ops))
    assert [x["alert_id"] for x in r.json()["alerts"]] == [b.alert_id]


async def test_customer_view_masks_phone_for_ops_only(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.customer("c1", "mgr-a", phone="+8613812345678", occupancy="rented")
    await rm.baseline("c1", "mgr-a")
    ops = (await client.get("/v1/customers/c1", headers=h(tokens.ops))).json()
    assert ops["phone"] == "+86*******5678" and ops["phone_masked"] is True
    assert ops["occupancy"] == "rented" and ops["segment"]["id"] == 2
    assert ops["segment"]["label"] == "comfortable homeowners"
    mgr = (await client.get("/v1/customers/c1", headers=h(tokens.mgr_a))).json()
    assert mgr["phone"] == "+8613812345678" and mgr["phone_masked"] is False


async def test_customer_view_shows_the_landlord_of_a_rented_home_to_its_manager_masked_for_ops(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    landlord = {"name": "王先生", "phone": "+8613900139000"}
    await rm.customer("c1", "mgr-a", phone="+8613812345678", occupancy="rented", landlord=landlord)
    mgr = (await client.get("/v1/customers/c1", headers=h(tokens.mgr_a))).json()
    assert mgr["landlord"] == landlord
    ops = (await client.get("/v1/customers/c1", headers=h(tokens.ops))).json()
    assert ops["landlord"] == {"name": "王先生", "phone": "+86*******9000"}
    assert (await client.get("/v1/customers/c1", headers=h(tokens.mgr_b))).status_code == 404
    # the home is owner-occupied now, the record still names the old landlord: not shown
    await rm.customer("c1", "mgr-a", phone="+8613812345678", occupancy="owner", landlord=landlord)
    assert (await client.get("/v1/customers/c1", headers=h(tokens.mgr_a))).json()["landlord"] is None


async def test_segments(client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel) -> None:
    r = await client.get("/v1/segments", headers=h(tokens.mgr_b))
    assert r.status_code == 200 and r.json() == []
    stored = await rm.segments(5)
    r = await client.get("/v1/segments", headers=h(tokens.mgr_b))
    assert [SegmentSummary.model_validate(s) for s in r.json()] == stored


async def test_readyz_follows_the_heartbeat(
    client: httpx.AsyncClient, rm: ReadModel, api_settings: Settings
) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503 and "never written" in r.json()["message"]
    await rm.heartbeat(age_s=api_settings.api_ready_max_staleness_s + 5)
    r = await client.get("/readyz")
    assert r.status_code == 503 and "stale" in r.json()["message"]
    await rm.heartbeat(age_s=1.0)
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert 0.5 < r.json()["readmodel_age_s"] < 30
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_expose_requests_and_pipeline_counters(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.baseline("c1", "mgr-a")
    await rm.redis.hset(
        rm.keys.metrics("worker"),
        mapping={  # the shapes the worker writes (stream/metrics.py, stream/readmodel.py)
            "readings_in": 42,
            "dlq:schema": 3,
            "dlq:invalid_json": 1,
            "consumer_lag:w0": 17,
            "alerts:sudden_increase": 4,
            'duplicates{kind="exact"}': 2,
            "garbage": "not-a-number",
        },
    )
    await rm.redis.hset(rm.keys.metrics("notifier"), mapping={"sms_sent": 2, "sms_deferred": 1})
    for _ in range(3):
        await client.get("/v1/customers/c1/baseline", headers=h(tokens.ops))
    await client.get("/v1/customers/nope/baseline", headers=h(tokens.ops))
    r = await client.get("/metrics", headers=h(tokens.ops))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = 'route="/v1/customers/{customer_id}/baseline"'
    assert f'meterwatch_api_requests_total{{method="GET",{route},status="200"}} 3.0' in text
    assert f'meterwatch_api_requests_total{{method="GET",{route},status="404"}} 1.0' in text
    assert f'meterwatch_api_request_duration_seconds_count{{method="GET",{route}}} 4.0' in text
    assert "c1" not in text and "nope" not in text  # routes by template, not by id
    assert 'meterwatch_pipeline_readings_in_total{service="worker"} 42.0' in text
    assert 'meterwatch_pipeline_dlq_total{code="schema",service="worker"} 3.0' in text
    assert 'meterwatch_pipeline_dlq_total{code="invalid_json",service="worker"} 1.0' in text
    assert "# TYPE meterwatch_pipeline_consumer_lag gauge" in text
    assert 'meterwatch_pipeline_consumer_lag{instance="w0",service="worker"} 17.0' in text
    assert 'meterwatch_pipeline_alerts_total{rule="sudden_increase",service="worker"} 4.0' in text
    assert 'meterwatch_pipeline_duplicates_total{kind="exact",service="worker"} 2.0' in text
    assert 'meterwatch_pipeline_sms_sent_total{service="notifier"} 2.0' in text
    assert 'meterwatch_pipeline_sms_deferred_total{service="notifier"} 1.0' in text
    assert "garbage" not in text


async def test_redis_down_is_503_json_never_500(api_settings: Settings, tokens: Tokens) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app: FastAPI = create_app(api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.get("/v1/customers/c1/baseline", headers=h(tokens.ops))
            assert r.status_code == 503 and r.json()["error"] == "unavailable"
            assert r.headers["retry-after"] == "1"
            r = await c.get("/readyz")
            assert r.status_code == 503 and "redis unreachable" in r.json()["message"]
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await app.state.runtime.aclose()


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await client.get("/v2/nothing", headers=h(tokens.ops))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await client.post("/v1/segments", headers=h(tokens.ops))
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_openapi_documents_every_contract_endpoint() -> None:
    from meterwatch.settings import Settings

    app: FastAPI = create_app(Settings(redis_prefix="x:"))
    spec = app.openapi()
    for path in (
        "/v1/customers/{customer_id}/baseline",
        "/v1/customers/{customer_id}/alerts",
        "/v1/segments",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert "get" in spec["paths"][path], path
    base = spec["paths"]["/v1/customers/{customer_id}/baseline"]["get"]
    assert base["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "BaselineSnapshot" in str(base["responses"]["200"])
    assert "ErrorBody" in str(base["responses"]["422"]) and "ErrorBody" in str(base["responses"]["404"])
    assert "security" not in spec["paths"]["/healthz"]["get"]
    _ = httpx  # the client fixture covers the served document


async def test_an_unexpected_exception_is_a_json_500(
    api_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = create_app(api_settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail +8613812345678")

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/boom")
        assert r.status_code == 500
        assert r.json() == {"error": "internal", "message": "internal error; it has been logged"}
        assert "secret" not in r.text  # no internals leak to the caller
        assert any("unexpected error on GET /boom" in rec.getMessage() for rec in caplog.records)
        assert "RuntimeError: secret detail +86*******5678" in caplog.text  # the traceback is there...
        assert "+8613812345678" not in caplog.text  # ...with the phone masked
    finally:
        await app.state.runtime.aclose()


async def test_batch_of_baselines(client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel) -> None:
    for cid, mgr, kwh in (("c1", "mgr-a", 1.0), ("c2", "mgr-b", 2.0), ("c3", "mgr-a", 3.0)):
        await rm.customer(cid, mgr)
        await rm.baseline(cid, mgr, kwh=kwh)
    q = "/v1/baselines?customer_id=c3&customer_id=c2&customer_id=nope&customer_id=c1&customer_id=c3"
    body = (await client.get(q, headers=h(tokens.ops))).json()
    got = [BaselineSnapshot.model_validate(b) for b in body["baselines"]]
    assert [(b.customer_id, b.cycle.cycle_to_date_kwh) for b in got] == [
        ("c3", 3.0),
        ("c2", 2.0),
        ("c1", 1.0),
    ]
    assert body["missing"] == ["nope"]
    # a manager gets its own; the other manager's customer is as missing as an unknown one
    body = (await client.get(q, headers=h(tokens.mgr_a))).json()
    assert [b["customer_id"] for b in body["baselines"]] == ["c3", "c1"]
    assert body["missing"] == ["c2", "nope"]


@pytest.mark.parametrize(
    "query",
    ["", "customer_id=", "customer_id=bad%20id", "&".join(f"customer_id=c{i}" for i in range(101))],
)
async def test_bad_batch_queries_are_422(client: httpx.AsyncClient, tokens: Tokens, query: str) -> None:
    r = await client.get(f"/v1/baselines?{query}", headers=h(tokens.ops))
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


async def test_corrupt_registry_record_is_a_json_500_with_masked_log(
    api_settings: Settings, tokens: Tokens, rm: ReadModel, caplog: pytest.LogCaptureFixture
) -> None:
    bad = '{"customer_id": "cx", "phone": "call +8613812345678", "manager_id": "mgr-a", "read_day": 99}'
    await rm.redis.set(rm.keys.customer("cx"), bad)
    app: FastAPI = create_app(api_settings)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/v1/customers/cx", headers=h(tokens.ops))
        assert r.status_code == 500 and r.json()["error"] == "internal"
        assert "ValidationError" in caplog.text and "+8613812345678" not in caplog.text
    finally:
        await app.state.runtime.aclose()
