"""The workbench in a real browser (Debian's chromium driven by Playwright) on the real stack.

A real `meterwatch worker` consumes a simulated run (history, registry, readings with injected
surges) from the real Kafka; the Ops API (with the workbench) serves the real Redis read model.
Then, as a person would: sign in, read the worklist, open a surged customer, acknowledge and
record an outcome, reload, switch language, look at segments, operations and the API docs, sign
out; a second manager cannot open the first one's customer; a hostile customer name is inert.
A screenshot of each page is saved to the directory ``WORKBENCH_SCREENSHOTS`` names (else the
test's tmp dir). A missing chromium fails the test, never skips it (``WORKBENCH_CHROMIUM``: the
browser binary, default ``/usr/bin/chromium``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from meterwatch.alertindex import event_json
from meterwatch.auth import create_token
from meterwatch.cli.publish import run_simulate
from meterwatch.cli.simulate import SimConfig, make_households, summarise
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from tests.integration.api.conftest import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Dialog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATUS_IS = '([id, s]) => document.querySelector(`[data-alert-id="${id}"] .status`).textContent === s'
XSS_NAME = '<script>window.__xss=1</script>"\'><img src=x onerror="window.__xss=2">'


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or "auth" in name or "secret" in name:
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


def _chromium() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail(
            f"no chromium at {CHROMIUM}: the browser tests need Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver)",
            pytrace=False,
        )
    return path


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def worker(api_settings: Settings, tmp_path: Path) -> Any:
    log = tmp_path / "worker.log"
    fh = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "meterwatch.cli", "worker", "--instance", "w0",
         "--metrics-port", str(_free_port()), "--loglevel", "info"],
        env=_env(api_settings), cwd=str(tmp_path), stdout=fh, stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    fh.close()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


def _run(coro: Any) -> Any:
    """Run a coroutine to completion in its own thread (Playwright's sync API owns this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_morning_in_the_workbench(
    api_settings: Settings, worker: Any, live_api: LiveServer, shots: Path
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    s = api_settings
    keys = Keys(s.redis_prefix)
    cfg = SimConfig(customers=24, days=7, start=dt.date(2026, 3, 2), surge_share=0.17, drop_share=0.0,
                    seed=1, history_days=400, managers=2)  # fmt: skip
    households = make_households(cfg)
    summary = summarise(households, cfg)
    surged = {x["customer_id"] for x in summary.surges}
    untouched = {h.customer_id for h in households} - surged
    assert len(surged) == 4

    async def setup() -> dict[str, str]:
        report = await run_simulate(s, cfg, progress=False, wait_for_worker=120)
        assert "has consumed" in " ".join(report.notes), report.notes
        # a customer whose name is an attack, through the real registry path
        from aiokafka import AIOKafkaProducer

        xss = {"customer_id": "zz-xss", "meter_ids": ["zz-xss-m"], "name": XSS_NAME,
               "manager_id": "sim-mgr-00",
               "phone": "+8613900000000", "timezone": "Asia/Shanghai"}  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(s.topic_customers, key=b"zz-xss", value=json.dumps(xss).encode())
        finally:
            await producer.stop()
        r = Redis.from_url(s.redis_url)
        try:
            ops, _ = await create_token(r, keys, "ops", label="browser-test")
            m0, _ = await create_token(r, keys, "manager", "sim-mgr-00")
            m1, _ = await create_token(r, keys, "manager", "sim-mgr-01")
        finally:
            await r.aclose()
        return {"ops": ops, "m0": m0, "m1": m1}

    tokens = _run(setup())
    owner = {h.customer_id: h.manager_id for h in households}

    async def indexed() -> set[str]:
        r = Redis.from_url(s.redis_url)
        try:
            # the bytes client (decode_responses=False): members and values are bytes
            ids = cast(list[bytes], await r.zrange(keys.alert_index("open"), 0, -1))
            owners = cast(list[bytes | None], await r.hmget(keys.alert_owner, ids) if ids else [])
            return {o.decode() for o in owners if o}
        finally:
            await r.aclose()

    def surged_alerted() -> set[str] | None:
        got = _run(indexed())
        return got if surged <= got else None

    _wait(surged_alerted, 180, f"open alerts of the surged customers {sorted(surged)}")
    _wait(lambda: _run(_get(s, keys.customer("zz-xss"))), 60, "the hostile customer in the read model")

    def segmented() -> bool:
        raw = _run(_get(s, keys.segments))
        return bool(raw) and sum(x["size"] for x in json.loads(raw)) >= cfg.customers

    _wait(segmented, 180, "every household in a segment")
    target = sorted(surged)[0]
    other = "m1" if owner[target] == "sim-mgr-00" else "m0"
    base = live_api.base_url
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens['ops']}"})
    daily = api.get(f"/v1/customers/{target}/daily").json()["days"]
    days_with_data = sum(1 for d in daily if d["kwh"] is not None)
    assert days_with_data >= 60  # the simulated history reaches the archive through the worker

    console: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="mw-chromium-"), executable_path=chromium, headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, locale="en-US",
        )  # fmt: skip
        try:
            page = ctx.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)

            def on_dialog(d: Dialog) -> None:
                dialogs.append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)

            # 1. sign in (as ops): the worklist shows the surged customers and none of the others
            page.goto(base + "/")
            assert page.url.startswith(base + "/signin")
            page.screenshot(path=str(shots / "signin.png"))
            page.fill("#token", tokens["ops"])
            page.click("#signin")
            page.wait_for_selector("table#worklist")
            assert page.url == base + "/"
            listed = set(page.eval_on_selector_all("tr.alert", "rows => rows.map(r => r.dataset.customerId)"))
            assert surged <= listed, (sorted(surged), sorted(listed))
            assert not (listed & untouched), sorted(listed & untouched)
            page.screenshot(path=str(shots / "worklist.png"))
            # live updates: a new alert for someone shows the notice without a reload
            page.wait_for_selector('#worklist[data-live-state="ready"]', state="attached", timeout=15_000)
            _run(
                _publish(s, keys.alert_events, event_json("alert", "new-one", target, owner[target], "open"))
            )
            page.wait_for_selector("#live-notice:not([hidden])", timeout=10_000)
            # one click acknowledges a row in place (no reload)
            row = page.locator(f'tr.alert:not([data-customer-id="{target}"])').first
            rid = row.get_attribute("data-alert-id")
            row.locator("button.ack").click()
            page.wait_for_function(STATUS_IS, arg=[rid, "acknowledged"])
            assert row.locator("button.ack").count() == 0
            assert api.get("/v1/alerts?status=acknowledged").json()["items"][0]["alert_id"] == rid

            # 2. a surged customer: one chart point per day of data, and the baseline band
            page.click(f'tr.alert[data-customer-id="{target}"] a.customer')
            page.wait_for_selector("#daily-chart svg")
            assert page.url == f"{base}/customers/{target}"
            assert page.locator("#daily-chart circle.pt").count() == days_with_data
            assert page.locator("#daily-chart path.band").count() >= 1
            assert page.locator("#cycle-chart polyline.kwh").count() >= 1
            cycles = api.get(f"/v1/customers/{target}/baseline").json()["baseline"]["cycles"]
            assert page.locator("#cycles-chart rect.bar").count() == len(cycles[-36:]) >= 3
            assert "*" in page.inner_text("#phone")  # masked
            page.screenshot(path=str(shots / "customer.png"), full_page=True)

            # 3. acknowledge, record an outcome, reload: it persists
            aid = (
                page.locator("#timeline li.alert")
                .filter(has=page.locator("button.ack"))
                .first.get_attribute("data-alert-id")
            )
            item = page.locator(f'li.alert[data-alert-id="{aid}"]')
            item.locator("button.ack").click()
            page.wait_for_function(STATUS_IS, arg=[aid, "acknowledged"])
            item.locator("details.outcome summary").click()
            item.locator("select[name=outcome]").select_option("explained_appliance")
            item.locator("textarea[name=note]").fill("new electric heater since Monday")
            item.locator("details.outcome button[type=submit]").click()
            page.wait_for_function(STATUS_IS, arg=[aid, "resolved"])
            page.reload()
            li = page.locator(f'li.alert[data-alert-id="{aid}"]')
            assert li.locator(".status").inner_text() == "resolved"
            assert "new electric heater since Monday" in li.inner_text()
            assert api.get("/v1/alerts", params={"status": "resolved"}).json()["items"][0]["alert_id"] == aid

            # 4. segments, a drill-down, operations, the API docs
            page.goto(base + "/segments")
            page.wait_for_selector("section.segment")
            segs = json.loads(_run(_get(s, keys.segments)) or b"[]")
            assert page.locator("section.segment").count() == len(segs) <= 7
            sizes = page.eval_on_selector_all("section.segment .size", "xs => xs.map(x => +x.textContent)")
            assert sizes == [x["size"] for x in segs]
            page.screenshot(path=str(shots / "segments.png"), full_page=True)
            page.click("section.segment h2 a")
            page.wait_for_selector("table#members")
            page.goto(base + "/ops")
            page.wait_for_selector("#heartbeat")
            assert page.locator("#alerts-per-100 tr").count() >= 1
            page.screenshot(path=str(shots / "operations.png"), full_page=True)
            page.goto(base + "/docs")
            page.wait_for_selector(".swagger-ui .information-container", timeout=20_000)
            assert "meterwatch Ops API" in page.inner_text(".swagger-ui .information-container")
            page.screenshot(path=str(shots / "api-docs.png"))

            # 5. zh-CN, remembered; then a phone screen
            page.goto(base + "/")
            page.click("#lang-switch")
            page.wait_for_selector("text=待处理告警")
            page.screenshot(path=str(shots / "worklist-zh.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.reload()
            page.screenshot(path=str(shots / "worklist-phone.png"))
            page.set_viewport_size({"width": 1280, "height": 860})
            page.click("#lang-switch")
            page.wait_for_selector("text=Open alerts")

            # 6. sign out ends the session
            page.click("#signout")
            page.wait_for_url(base + "/signin")
            page.goto(base + "/")
            assert page.url.startswith(base + "/signin")

            # 7. a second manager cannot open the first one's customer
            page.fill("#token", tokens[other])
            page.click("#signin")
            page.wait_for_url(base + "/")
            before = len(console)
            resp = page.goto(f"{base}/customers/{target}")
            assert resp is not None and resp.status == 404
            assert all("404" in c for c in console[before:])  # the browser reports the 404 itself
            del console[before:]
            assert page.locator("#error").count() == 1
            assert target not in page.locator("main").inner_text()
            page.click("#signout")

            # 8. the hostile name renders as text, runs nothing
            page.goto(base + "/signin")
            page.fill("#token", tokens["m0"])
            page.click("#signin")
            page.wait_for_url(base + "/")
            page.goto(f"{base}/customers/zz-xss")
            assert page.inner_text("#customer-name").startswith(XSS_NAME)
            assert page.evaluate("window.__xss") is None
            assert page.evaluate("document.querySelectorAll('script:not([src]), img[src=x]').length") == 0
            page.screenshot(path=str(shots / "customer-hostile-name.png"))
        finally:
            print("browser console errors:", console, "dialogs:", dialogs)  # shown when the test fails
            ctx.close()
    api.close()
    assert dialogs == []
    assert console == []


async def _get(s: Settings, key: str) -> bytes | None:
    r = Redis.from_url(s.redis_url)
    try:
        value = await r.get(key)
        assert not isinstance(value, str)  # the bytes client (decode_responses=False)
        return value
    finally:
        await r.aclose()


async def _publish(s: Settings, channel: str, data: bytes) -> None:
    r = Redis.from_url(s.redis_url)
    try:
        await r.publish(channel, data)
    finally:
        await r.aclose()
