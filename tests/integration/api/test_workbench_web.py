"""The workbench pages over HTTP on the real Redis and Kafka: session, CSRF, escaping, headers,
occupant change to the registry topic, live events. (The browser test is test_workbench_browser.py.)"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from api import web
from api.app import create_app
from meterwatch.alertindex import event_json
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from tests.integration.api.conftest import LiveServer, ReadModel, Tokens
from tests.integration.api.test_workbench_api import seed_alert

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    """The conftest's app, also closing the registry producer and the event hub (no lifespan here)."""
    application = create_app(api_settings)
    yield application
    await web.shutdown(application)
    await application.state.registry.aclose()
    await application.state.runtime.aclose()


XSS_NAME = "<script>alert('x')</script>\"onmouseover=\"alert(1)"


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text)
    assert pre is not None
    return await client.post("/signin", data={"pre": pre.group(1), "token": token, "next": "/"})


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert m is not None
    return m.group(1)


async def test_sign_in_session_cookie_and_sign_out(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    anon = await client.get("/")
    assert anon.status_code == 303 and anon.headers["location"] == "/signin?next=/"
    bad = await sign_in(client, "mw_nope_nope")
    assert bad.status_code == 401 and "mw_session" not in bad.cookies
    ok = await sign_in(client, tokens.mgr_a)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert (
        "mw_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
    )
    assert tokens.mgr_a not in cookie
    page = await client.get("/")
    assert page.status_code == 200 and "mgr-a" in page.text
    old = client.cookies.get("mw_session")
    out = await client.post("/signout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert old is not None
    client.cookies.set("mw_session", old)  # replaying the old cookie: the session is gone
    again = await client.get("/")
    assert again.status_code == 303 and again.headers["location"].startswith("/signin")


async def test_sign_in_needs_the_form_token_of_the_same_origin(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await client.get("/signin")
    r = await client.post("/signin", data={"pre": "forged", "token": tokens.ops})
    assert r.status_code == 403 and "mw_session" not in r.cookies
    form = await client.get("/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = await client.post(
        "/signin", data={"pre": pre, "token": tokens.ops}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403


async def test_state_changes_need_csrf_and_same_origin(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    await rm.customer("c1", "mgr-a", name="Alice")
    aid = await seed_alert(redis, keys, "c1", "mgr-a", "sudden_increase", 3)
    await sign_in(client, tokens.mgr_a)
    page = await client.get("/")
    token = csrf_of(page.text)
    assert (await client.post(f"/alerts/{aid}/ack", data={"next": "/"})).status_code == 403
    assert (await client.post(f"/alerts/{aid}/ack", data={"csrf": "wrong"})).status_code == 403
    cross = await client.post(
        f"/alerts/{aid}/ack", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert await redis.hget(keys.alert_state(aid), "status") is None  # nothing changed
    ok = await client.post(
        f"/alerts/{aid}/ack",
        data={"csrf": token},
        headers={"Accept": "application/json", "Origin": "http://api.test"},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "acknowledged"
    res = await client.post(
        f"/alerts/{aid}/outcome",
        data={"csrf": token, "outcome": "reached", "note": "ok", "next": "/customers/c1"},
    )
    assert res.status_code == 303 and res.headers["location"] == "/customers/c1"
    assert await redis.hget(keys.alert_state(aid), "status") == b"resolved"
    offsite = await client.post(
        f"/alerts/{aid}/outcome", data={"csrf": token, "outcome": "reached", "next": "//evil.example"}
    )
    assert offsite.status_code == 409  # resolved already: and never a redirect off the site


async def test_names_and_notes_render_inert(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    await rm.customer("x1", "mgr-a", name=XSS_NAME)
    await rm.baseline("x1", "mgr-a")
    aid = await seed_alert(redis, keys, "x1", "mgr-a", "sudden_increase", 3)
    await client.post(
        f"/v1/alerts/{aid}/outcome",
        json={"outcome": "explained_other", "note": "<img src=x onerror=alert(2)>"},
        headers={"Authorization": f"Bearer {tokens.mgr_a}"},
    )
    await sign_in(client, tokens.mgr_a)
    for url in ("/?status=", "/customers/x1"):
        page = await client.get(url)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;onmouseover=&#34;alert(1)" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None  # no inline script element
        assert " style=" not in page.text  # no inline style attribute
    assert page.headers["x-frame-options"] == "DENY"


async def test_a_manager_cannot_open_another_managers_customer(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    await rm.customer("b9", "mgr-b", name="Bob")
    await rm.baseline("b9", "mgr-b")
    await sign_in(client, tokens.mgr_a)
    theirs = await client.get("/customers/b9")
    nobody = await client.get("/customers/zz-none")
    assert theirs.status_code == nobody.status_code == 404
    assert "Bob" not in theirs.text


async def test_language_is_remembered_per_user(client: httpx.AsyncClient, tokens: Tokens) -> None:
    await sign_in(client, tokens.mgr_a)
    page = await client.get("/")
    r = await client.post("/lang", data={"csrf": csrf_of(page.text), "lang": "zh-CN", "next": "/"})
    assert r.status_code == 303
    assert "待处理告警" in (await client.get("/")).text
    client.cookies.clear()  # another browser, same manager
    await sign_in(client, tokens.mgr_a)
    assert "待处理告警" in (await client.get("/")).text


async def test_occupant_change_goes_to_the_registry_topic(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, mw_settings: Settings, kafka_consume: Any
) -> None:
    await rm.customer("o1", "mgr-a", name="Olga", occupancy="rented")
    await sign_in(client, tokens.mgr_a)
    page = await client.get("/customers/o1")
    r = await client.post("/customers/o1/occupant", data={"csrf": csrf_of(page.text), "since": "2025-02-01"})
    assert r.status_code == 303 and r.headers["location"] == "/customers/o1?sent=occupant"
    recs = await kafka_consume(mw_settings.topic_customers, 1)
    assert recs and recs[0].key == b"o1"
    value = json.loads(recs[0].value)
    assert (
        value["occupant_since"] == "2025-02-01" and value["name"] == "Olga" and value["occupancy"] == "rented"
    )
    bad = await client.post("/customers/o1/occupant", data={"csrf": csrf_of(page.text), "since": "soon"})
    assert bad.status_code == 422


async def test_the_customer_page_shows_the_landlord_of_a_rented_home(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel
) -> None:
    landlord = {"name": "Mr Lee", "phone": "+447700900123"}
    await rm.customer("l1", "mgr-a", occupancy="rented", landlord=landlord)
    await rm.customer("l2", "mgr-a", occupancy="owner", landlord=landlord)  # not rented: not shown
    await sign_in(client, tokens.mgr_a)
    page = (await client.get("/customers/l1")).text
    assert re.search(r'id="landlord">Mr Lee \+447700900123<', page), page
    assert 'id="landlord"' not in (await client.get("/customers/l2")).text
    client.cookies.clear()
    await sign_in(client, tokens.ops)
    assert 'id="landlord">Mr Lee +44******0123<' in (await client.get("/customers/l1")).text


async def test_live_events_reach_the_right_manager(
    live_api: LiveServer, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(base_url=live_api.base_url) as c:
        await sign_in(c, tokens.mgr_a)
        async with c.stream("GET", "/events", timeout=10) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.aiter_lines()

            data = None
            async with asyncio.timeout(8):
                async for line in lines:  # "ready": the process's subscription is confirmed
                    if line == "event: ready":
                        break
                await redis.publish(keys.alert_events, event_json("alert", "other", "b1", "mgr-b", "open"))
                await redis.publish(keys.alert_events, event_json("alert", "mine", "a1", "mgr-a", "open"))
                async for line in lines:
                    if line.startswith("data: ") and line != "data: {}":
                        data = json.loads(line[6:])
                        break
    assert data is not None and data["alert_id"] == "mine"  # mgr-b's event was not sent to mgr-a


async def test_the_notification_log_shows_the_notifiers_records_without_phones(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    await rm.customer("n1", "mgr-a", name="Nina")
    await rm.baseline("n1", "mgr-a")
    aid = await seed_alert(redis, keys, "n1", "mgr-a", "sudden_increase", 3)
    # the notifier's records, in its layout (notifier/layout.py), read through meterwatch.keys
    await redis.set(keys.notifier_alert(aid), json.dumps(["sms-1", "push-1"]))
    await redis.hset(
        keys.notifier_notification("sms-1"),
        mapping={"channel": "sms", "status": "held", "reason": "moderation.quiet_hours",
                 "created_at": "2025-01-03T08:00:02+00:00", "phone": "+8613812345678"},
    )  # fmt: skip
    await redis.hset(
        keys.notifier_notification("push-1"),
        mapping={"channel": "push", "status": "sent", "created_at": "2025-01-03T08:00:01+00:00"},
    )
    await sign_in(client, tokens.mgr_a)
    page = await client.get("/customers/n1")
    table = page.text[page.text.index('id="notifications"') :]
    table = table[: table.index("</table>")]
    assert "moderation.quiet_hours" in table and "held" in table and "push" in table
    assert "13812345678" not in table


async def test_pages_share_the_tokens_rate_limit_with_the_api(
    api_settings: Settings, tokens: Tokens, rm: ReadModel
) -> None:
    limited = create_app(api_settings.model_copy(update={"api_rate_limit_per_min": 3}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://t") as c:
            await sign_in(c, tokens.mgr_a)  # the sign-in itself is not a request of the token yet
            codes = [(await c.get("/")).status_code for _ in range(3)]
            r = await c.get("/segments")
            if r.status_code == 200:  # the minute window rolled over between requests: once more
                codes += [(await c.get("/")).status_code for _ in range(2)]
                r = await c.get("/segments")
            assert codes[:3] == [200, 200, 200]
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
            api = await c.get("/v1/alerts", headers={"Authorization": f"Bearer {tokens.mgr_a}"})
            assert api.status_code == 429  # the same budget as the token's API calls
            other = await c.get("/v1/alerts", headers={"Authorization": f"Bearer {tokens.mgr_b}"})
            assert other.status_code == 200
    finally:
        await web.shutdown(limited)
        await limited.state.registry.aclose()
        await limited.state.runtime.aclose()


async def test_no_token_in_a_url_or_a_log(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await rm.customer("t1", "mgr-a", name="Tess")
    form = await client.get("/signin")
    assert 'method="post"' in form.text.lower() and 'name="token"' in form.text  # the token goes in a body
    bad = await sign_in(client, tokens.mgr_a + "x")
    assert bad.status_code == 401
    ok = await sign_in(client, tokens.mgr_a)
    assert tokens.mgr_a not in ok.headers["location"]
    page = await client.get("/customers/t1")
    for text in (page.text, ok.headers.get("set-cookie", ""), caplog.text):
        assert tokens.mgr_a not in text
    assert tokens.mgr_a[-12:] not in caplog.text


def _rows(html: str) -> dict[str, str]:
    """alert id -> the class attribute of its worklist row."""
    return {m.group(2): m.group(1) for m in re.finditer(r'<tr class="([^"]*)" data-alert-id="([^"]+)"', html)}


async def test_worklist_filters_callback_timer_and_one_click_ack(
    client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    import datetime as dt

    for cid in ("w1", "w2"):
        await rm.customer(cid, "mgr-a", name=cid.upper())
    old = await seed_alert(redis, keys, "w1", "mgr-a", "sudden_increase", 3, severity="critical")
    fresh = await seed_alert(redis, keys, "w2", "mgr-a", "sustained_drop", 4)
    # the fresh alert was created 2.5 hours ago: 21 whole hours left of its 24-hour callback window
    body = await redis.hget(keys.alert_bodies("w2"), fresh)
    assert body is not None
    doc = json.loads(body)
    doc["created_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2.5)).isoformat()
    await redis.hset(keys.alert_bodies("w2"), fresh, json.dumps(doc))
    await sign_in(client, tokens.mgr_a)
    page = await client.get("/")
    rows = _rows(page.text)
    assert list(rows) == [old, fresh]  # critical first
    assert "overdue" in rows[old].split() and "overdue" not in rows[fresh].split()
    assert "21 h left" in page.text.split(f'data-alert-id="{fresh}"')[1].split("</tr>")[0]
    assert list(_rows((await client.get("/", params={"rule": "sustained_drop"})).text)) == [fresh]
    assert list(_rows((await client.get("/", params={"severity": "critical"})).text)) == [old]
    assert list(_rows((await client.get("/", params={"since": "2025-01-04"})).text)) == [fresh]
    # one click: the row's only form is the acknowledge button with the page's CSRF token
    row = page.text.split(f'data-alert-id="{fresh}"')[1].split("</tr>")[0]
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', row, re.S)
    assert form is not None and form.group(1) == f"/alerts/{fresh}/ack"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
    done = await client.post(form.group(1), data=fields)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert list(_rows((await client.get("/")).text)) == [old]  # the open list no longer holds it
    acked = _rows((await client.get("/", params={"status": "acknowledged"})).text)
    assert list(acked) == [fresh]


async def test_the_operations_page_reads_the_published_counters_and_is_for_ops_only(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys
) -> None:
    # the worker's and the notifier's counters as they publish them (stream/readmodel.py, notifier)
    await redis.hset(
        keys.metrics("worker"),
        mapping={"consumer_lag:w0": "12345", "dlq:conflicting_duplicate": "7", "dlq:schema": "2",
                 "alerts:sudden_increase": "30", "readings_processed": "99000"},
    )  # fmt: skip
    await redis.hset(keys.metrics("notifier"), mapping={"sms_sent": "11", "sms_suppressed": "4"})
    await redis.set(keys.segments, json.dumps([{"id": 0, "label": "a", "size": 600, "centre": {}}]))
    await sign_in(client, tokens.ops)
    page = (await client.get("/ops")).text

    def table(tid: str) -> list[list[str]]:
        body = page.split(f'id="{tid}"')[1].split("</table>")[0]
        return [
            [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        ]

    assert table("lag") == [["w0", "12345"]]
    assert 'class="num bad"' in page.split('id="lag"')[1].split("</table>")[0]  # a lag over 10,000 stands out
    assert table("dlq") == [["conflicting_duplicate", "7"], ["schema", "2"]]
    assert table("alerts-per-100") == [["sudden_increase", "30", "5.0"]]  # 30 alerts / 600 customers
    assert table("sms") == [["sms_sent", "11"], ["sms_suppressed", "4"]]
    await client.post("/signout", data={"csrf": csrf_of(page)})
    await sign_in(client, tokens.mgr_a)
    theirs = await client.get("/ops")
    assert theirs.status_code == 403 and "12345" not in theirs.text
