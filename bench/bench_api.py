"""Benchmark: `GET /v1/customers/{id}/baseline` against a bare constant endpoint, same run.

Usage (the local stack must run: `meterwatch dev up`):

    python bench/bench_api.py [--concurrency 8] [--duration 3] [--rounds 5] [--customers 1000]

What it does, bounded in time (rounds x 4 endpoints x duration seconds):

* seeds ``--customers`` customers as the worker writes them (``state:{id}``: the stored
  state of one of 120 households of the repository's sample, folded by the engine, a
  third of them priced, plus the registry record), and as many as a worker before the
  view-on-read wrote them (``baseline:{id}``: the same households' snapshots, ~5 KB),
  under a private Redis prefix of the running stack, plus an ops and a manager token;
* starts ONE uvicorn worker (subprocess, loopback, access log off) serving
  ``create_app(settings)`` plus the reference route ``GET /bench/constant``: a
  plain FastAPI endpoint returning a constant dict — same process, same
  middleware (metrics) and error handlers, but no token, no rate limit, no Redis;
* drives it with ``wrk`` (one thread, ``--concurrency`` connections, keep-alive)
  alternating reference / baseline(ops) / baseline(manager) (both built on read from the
  state) / stored(ops) (the old snapshot served as it is) for ``--rounds`` rounds, each
  for ``--duration`` seconds, the baseline requests cycling over all seeded customers;
  reports the median throughput and p99 of each, and the ratio to the reference. The
  rate limiter is active (in Redis) with a limit high enough never to trip. Non-2xx
  answers make the run fail.

The figures depend on the machine (and on what else runs on it): compare the
ratio, not the absolute numbers. Cleans up its Redis keys and kills its server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

if TYPE_CHECKING:
    from meterwatch.settings import Settings

CONSTANT = {"status": "ok", "service": "meterwatch", "constant": True}


def _serve(port: int) -> None:
    import uvicorn

    from api.app import create_app
    from meterwatch.settings import get_settings

    app = create_app(get_settings(), freeze_gc=True)  # as `meterwatch api` builds it

    @app.get("/bench/constant", include_in_schema=False)
    async def constant() -> dict[str, object]:
        return CONSTANT

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _seed(settings: Settings, n: int) -> tuple[str, str, list[str], list[str]]:
    """``n`` customers as the worker writes them now (``state:{id}``: the stored state of a
    household of the repository's sample, folded by the engine, with its registry record) and
    ``n`` as an earlier worker wrote them (``baseline:{id}``: the snapshot of the same
    household, built by the domain). Returns the tokens and the two id lists."""
    import datetime as dt

    import orjson
    from bench_snapshot import profiles  # type: ignore[import-not-found]  # the sample households, folded
    from redis.asyncio import Redis

    from baselines.readview import load_engine
    from meterwatch.auth import create_token
    from meterwatch.contracts import CustomerRecord
    from meterwatch.keys import Keys

    keys = Keys(settings.redis_prefix)
    redis = Redis.from_url(settings.redis_url)
    eng = load_engine(settings)
    cases = profiles(eng, 120)
    now = dt.datetime(2014, 3, 5, 12, tzinfo=dt.UTC)
    ids = [f"MAC{i:06d}" for i in range(n)]
    old_ids = [f"OLD{i:06d}" for i in range(n)]
    async with redis.pipeline(transaction=False) as p:
        for i, (cid, old) in enumerate(zip(ids, old_ids, strict=True)):
            prof, cust, seg = cases[i % len(cases)]
            for c in (cid, old):
                rec = CustomerRecord(
                    customer_id=c, meter_ids=[f"m{c}"], name="A Customer", phone="+447700900123",
                    manager_id="mgr-bench", occupancy="owner", read_day=cust.read_day,
                    tariff_plan=cust.tariff_plan, budget=cust.budget,
                )  # fmt: skip
                p.set(keys.customer(c), rec.model_dump_json())
            d = prof.to_dict() | {"id": cid}
            p.set(keys.state(cid), orjson.dumps({"v": 2, "p": d, "s": seg.model_dump(), "f": -1}))
            prof.customer_id = old
            p.set(keys.baseline(old), eng.snapshot(prof, cust, seg, now).model_dump_json())
            prof.customer_id = cases[i % len(cases)][1].customer_id
        await p.execute()
    ops, _ = await create_token(redis, keys, "ops", label="bench")
    mgr, _ = await create_token(redis, keys, "manager", "mgr-bench", label="bench")
    await redis.aclose()
    return ops, mgr, ids, old_ids


async def _cleanup(settings: Settings) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
    for i in range(0, len(keys), 500):
        await redis.delete(*keys[i : i + 500])
    await redis.aclose()


def _lua(token: str, ids: list[str] | None, path: str) -> str:
    if ids is None:
        return f'wrk.method = "GET"\nwrk.path = "{path}"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
    listing = ",".join(f'"{i}"' for i in ids)
    return (
        f"local ids = {{{listing}}}\n"
        "local n = 0\n"
        f'local hdr = {{["Authorization"] = "Bearer {token}"}}\n'
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", "/v1/customers/" .. ids[(n % #ids) + 1] .. "/baseline", hdr)\n'
        "end\n"
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _match(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    m = re.search(pattern, text, flags)
    if m is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return m


def _wrk(url: str, script: Path, concurrency: int, duration: float) -> tuple[float, float, int, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    rps = float(_match(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = _match(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = float(m.group(1)) * _UNITS[m.group(2)]
    total = int(_match(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p99, total, int(bad.group(1)) if bad else 0


def _redis_rtt(url: str, n: int = 2000) -> tuple[float, float]:
    """p50 / p99 (ms) of a plain synchronous redis-py GET round trip: the machine's floor."""
    import redis

    client = redis.Redis.from_url(url)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        client.get("bench-api-nonexistent-key")
        lat.append((time.perf_counter() - t) * 1000)
    client.close()
    lat.sort()
    return lat[n // 2], lat[int(n * 0.99)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    from meterwatch.settings import Settings

    settings = Settings().model_copy(
        update={"redis_prefix": f"bench{uuid.uuid4().hex[:8]}:", "api_rate_limit_per_min": 1_000_000_000}
    )
    ops, mgr, ids, old_ids = asyncio.run(_seed(settings, args.customers))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(
        MW_REDIS_URL=settings.redis_url,
        MW_REDIS_PREFIX=settings.redis_prefix,
        MW_API_RATE_LIMIT_PER_MIN=str(settings.api_rate_limit_per_min),
        PYTHONPATH=str(ROOT),
    )
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[tuple[float, float]]] = {
        "reference": [],
        "baseline_ops": [],
        "baseline_manager": [],
        "stored_ops": [],
    }
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        check = httpx.get(
            f"{base}/v1/customers/{ids[0]}/baseline", headers={"Authorization": f"Bearer {ops}"}
        )
        assert check.status_code == 200 and check.json()["customer_id"] == ids[0], check.text
        size = len(check.content)
        check = httpx.get(
            f"{base}/v1/customers/{old_ids[0]}/baseline", headers={"Authorization": f"Bearer {ops}"}
        )
        assert check.status_code == 200 and check.json()["customer_id"] == old_ids[0], check.text
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {
                "reference": Path(tmp, "ref.lua"),
                "baseline_ops": Path(tmp, "ops.lua"),
                "baseline_manager": Path(tmp, "mgr.lua"),
                "stored_ops": Path(tmp, "old.lua"),
            }
            scripts["reference"].write_text(_lua(ops, None, "/bench/constant"))
            scripts["baseline_ops"].write_text(_lua(ops, ids, ""))
            scripts["baseline_manager"].write_text(_lua(mgr, ids, ""))
            scripts["stored_ops"].write_text(_lua(ops, old_ids, ""))
            rtt_before = _redis_rtt(settings.redis_url)
            _wrk(base, scripts["reference"], args.concurrency, 1.0)  # warm-up
            _wrk(base, scripts["baseline_ops"], args.concurrency, 1.0)
            for _ in range(args.rounds):
                for name, script in scripts.items():
                    rps, p99, total, bad = _wrk(base, script, args.concurrency, args.duration)
                    if bad:
                        raise RuntimeError(f"{name}: {bad} of {total} answers were not 2xx")
                    results[name].append((rps, p99))
            rtt_after = _redis_rtt(settings.redis_url)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        asyncio.run(_cleanup(settings))

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores (shared; load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}), "
        f"python {sys.version.split()[0]}, one uvicorn worker, wrk -t1 -c{args.concurrency}, "
        f"{args.rounds} rounds x {args.duration:g} s per endpoint, {args.customers} customers, "
        f"baseline body {size} bytes"
    )
    print(
        f"Redis GET round trip (plain client, same run): "
        f"p50 {rtt_before[0]:.2f} / p99 {rtt_before[1]:.2f} ms "
        f"before, p50 {rtt_after[0]:.2f} / p99 {rtt_after[1]:.2f} ms after"
    )
    ref_rps = statistics.median(r for r, _ in results["reference"])
    print(
        f"{'endpoint':<18}{'req/s (median)':>16}{'p99 ms (median)':>17}"
        f"{'ratio of medians':>18}{'paired ratio (median)':>23}"
    )
    for name, runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        p99 = statistics.median(p for _, p in runs)
        # each round measures every endpoint back to back: the per-round ratio cancels slow drifts
        paired = statistics.median(
            r / ref for (r, _), (ref, _) in zip(runs, results["reference"], strict=True)
        )
        print(f"{name:<18}{rps:>16.0f}{p99:>17.2f}{rps / ref_rps:>18.2f}{paired:>23.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
