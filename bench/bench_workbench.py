"""Benchmark: the workbench's worklist and customer page, with references in the same run.

Usage (the local stack must run: `meterwatch dev up`):

    python bench/bench_workbench.py [--customers 2000] [--open-alerts 300] [--requests 60] [--rounds 3]

What it does, bounded (rounds x 4 endpoints x requests, sequential, one connection):

* seeds under a private Redis prefix of the running stack one manager with ``--customers``
  customers (registry record, baseline snapshot with 24 cycles, a full 512-day daily
  archive) and ``--open-alerts`` open alerts among them (bodies, per-customer ZSETs and the
  alert index, as the worker writes them), plus as many customers and alerts of another
  manager (they must be skipped), and a manager token;
* starts ONE uvicorn worker (subprocess, loopback, access log off) serving
  ``create_app(settings, freeze_gc=True)`` as ``meterwatch api`` does, signs in once with
  the token (session cookie), then times, per round: ``GET /healthz`` (reference: no Redis,
  no auth), ``GET /v1/customers/{id}/baseline`` (reference: the API's hot path),
  ``GET /`` (the worklist: all open alerts ranked and rendered) and
  ``GET /customers/{id}`` (the customer page: record, snapshot, archive, three charts,
  alerts with lifecycle, notification log);
* reports p50/p99 in ms per endpoint over all rounds and the ratios to the references.

The time is the client's on loopback (server time plus ~0.1 ms of transport). The figures
depend on the machine and what else runs on it: read the ratios. Cleans up its keys and
stops its server.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANAGER = "bench-mgr"
OTHER = "bench-other"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(prefix: str, customers: int, open_alerts: int) -> tuple[str, list[str]]:
    import orjson
    from redis.asyncio import Redis

    from meterwatch import dailyarchive
    from meterwatch.alertindex import AlertIndexer
    from meterwatch.auth import create_token
    from meterwatch.keys import Keys
    from meterwatch.settings import Settings
    from tests.integration.api.conftest import make_alert, make_snapshot

    s = Settings(redis_prefix=prefix)
    r = Redis.from_url(s.redis_url)
    k = Keys(prefix)
    rng = random.Random(7)
    end = dt.date(2025, 1, 9).toordinal()
    with_alerts: list[str] = []
    try:
        for mgr in (MANAGER, OTHER):
            pipe = r.pipeline(transaction=False)
            ids = [f"{mgr}-{i:05d}" for i in range(customers)]
            for cid in ids:
                rec = {"customer_id": cid, "name": f"Customer {cid}", "manager_id": mgr,
                       "phone": "+8613812345678", "meter_ids": [f"m-{cid}"], "sms_opt_in": True}  # fmt: skip
                pipe.set(k.customer(cid), orjson.dumps(rec))
                pipe.set(k.baseline(cid), make_snapshot(cid, mgr).model_dump_json())
                recs = [
                    dailyarchive.DayRecord(end - i, round(rng.uniform(4, 14), 3), 8.0, 3.2, 14.5)
                    for i in range(dailyarchive.SLOTS)
                ]
                pipe.set(k.daily(cid), dailyarchive.apply_writes(b"", dailyarchive.writes(recs)))
            await pipe.execute()
            indexer = AlertIndexer(r, k)
            pipe = r.pipeline(transaction=False)
            for j, cid in enumerate(rng.sample(ids, min(open_alerts, customers))):
                a = make_alert(
                    cid, mgr, rng.choice(["sudden_increase", "projected_over_same_period"]), 1 + j % 9
                )
                doc = orjson.loads(a.to_json())
                doc["severity"] = rng.choice(["warning", "warning", "critical", "info"])
                doc["observed"]["ratio"] = round(rng.uniform(1.2, 6.0), 2)
                pipe.zadd(k.alerts(cid), {a.alert_id: a.triggered_by.timestamp()})
                pipe.hset(k.alert_bodies(cid), a.alert_id, orjson.dumps(doc))
                await indexer.queue(
                    pipe, a.alert_id, cid, mgr, a.triggered_by.timestamp(), a.rule, doc["severity"]
                )
                if mgr == MANAGER:
                    with_alerts.append(cid)
            await pipe.execute()
        token, _ = await create_token(r, k, "manager", MANAGER, label="bench")
        await r.set(k.heartbeat, str(time.time()))
    finally:
        await r.aclose()
    return token, with_alerts


async def cleanup(prefix: str) -> None:
    from redis.asyncio import Redis

    from meterwatch.settings import Settings

    r = Redis.from_url(Settings().redis_url)
    try:
        batch = []
        async for key in r.scan_iter(match=prefix + "*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                await r.delete(*batch)
                batch = []
        if batch:
            await r.delete(*batch)
    finally:
        await r.aclose()


def serve(prefix: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(MW_REDIS_PREFIX=prefix, MW_API_RATE_LIMIT_PER_MIN="1000000", PYTHONPATH=str(ROOT))
    code = (
        "import uvicorn; from api.app import create_app; from meterwatch.settings import get_settings; "
        f"uvicorn.run(create_app(get_settings(), freeze_gc=True), host='127.0.0.1', port={port}, "
        "log_level='warning', access_log=False)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=str(ROOT))


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--open-alerts", type=int, default=300)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    prefix = f"benchwb{uuid.uuid4().hex[:8]}:"
    t0 = time.perf_counter()
    token, with_alerts = asyncio.run(seed(prefix, args.customers, args.open_alerts))
    took = time.perf_counter() - t0
    print(f"seeded {2 * args.customers} customers, {2 * args.open_alerts} open alerts in {took:.1f} s")
    port = _free_port()
    proc = serve(prefix, port)
    base = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {"healthz": [], "baseline": [], "worklist": [], "customer": []}
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(200):
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            form = c.get("/signin").text
            pre = re.search(r'name="pre" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            assert c.post("/signin", data={"pre": pre, "token": token}).status_code == 303
            first = c.get("/")
            rows = first.text.count('<tr class="alert')
            assert first.status_code == 200 and rows == args.open_alerts, (first.status_code, rows)
            auth = {"Authorization": f"Bearer {token}"}
            rng = random.Random(3)
            for _round in range(args.rounds):
                for name in times:
                    for _ in range(args.requests):
                        cid = rng.choice(with_alerts)
                        url, headers = {
                            "healthz": ("/healthz", {}),
                            "baseline": (f"/v1/customers/{cid}/baseline", auth),
                            "worklist": ("/", {}),
                            "customer": (f"/customers/{cid}", {}),
                        }[name]
                        start = time.perf_counter()
                        resp = c.get(url, headers=headers)
                        times[name].append((time.perf_counter() - start) * 1000)
                        if resp.status_code != 200:
                            raise SystemExit(f"{url}: {resp.status_code}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        asyncio.run(cleanup(prefix))
    print(f"{'endpoint':<40} {'p50 ms':>8} {'p99 ms':>8} {'p50 / healthz':>14} {'p50 / baseline':>15}")
    ref_h = statistics.median(times["healthz"])
    ref_b = statistics.median(times["baseline"])
    labels = {
        "healthz": "GET /healthz (reference)",
        "baseline": "GET /v1/customers/{id}/baseline (ref)",
        "worklist": f"GET / (worklist, {args.open_alerts} open)",
        "customer": "GET /customers/{id} (customer page)",
    }
    for name, xs in times.items():
        p50 = statistics.median(xs)
        print(f"{labels[name]:<40} {p50:8.2f} {pct(xs, 0.99):8.2f} {p50 / ref_h:14.1f} {p50 / ref_b:15.1f}")
    print(f"({args.rounds} rounds x {args.requests} sequential requests per endpoint; one uvicorn process)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
