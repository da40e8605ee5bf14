"""The README demo path end to end: `simulate` -> a real `meterwatch worker` -> alerts and segments.

The simulator says which households got a surge or a long drop; the worker (real Kafka,
real Redis) must alert those households, and the segmenter must have placed every household in one
of at most 7 labelled segments that the read model serves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from meterwatch.cli.publish import run_simulate
from meterwatch.cli.simulate import SimConfig, make_households, summarise
from meterwatch.contracts import Alert, SegmentSummary
from meterwatch.keys import Keys
from meterwatch.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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


async def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


async def test_simulated_surges_are_alerted_and_everyone_is_segmented(
    mw_settings: Settings, redis_client: Any, kafka_consume: Any, tmp_path: Path
) -> None:
    s = mw_settings
    cfg = SimConfig(
        customers=40,
        days=7,
        start=dt.date(2026, 3, 2),
        surge_share=0.15,
        drop_share=0.1,
        seed=21,
        history_days=400,
    )
    summary = summarise(make_households(cfg), cfg)
    surged = {x["customer_id"] for x in summary.surges}
    dropped = {x["customer_id"] for x in summary.drops}
    assert len(surged) == 6 and len(dropped) == 4

    log = tmp_path / "worker.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a child process for the test's lifetime
            [sys.executable, "-m", "meterwatch.cli", "worker", "--instance", "w0",
             "--metrics-port", str(_free_port()), "--loglevel", "info"],
            env=_env(s), cwd=str(tmp_path), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        keys = Keys(s.redis_prefix)
        # one call, as `meterwatch simulate` does: the readings wait until the worker has
        # consumed the history (as after a bootstrap), so same-period rules see it
        report = await run_simulate(s, cfg, progress=False, wait_for_worker=120)
        assert report.sent == {
            s.topic_customers: 40,
            s.topic_history: 40 * 400,
            s.topic_readings: 40 * 48 * 7,
        }
        assert len(report.notes) == 1 and "has consumed" in report.notes[0], report.notes

        async def segments() -> list[SegmentSummary] | None:
            raw = await redis_client.get(keys.segments)
            if raw is None:
                return None
            segs = [SegmentSummary.model_validate(x) for x in json.loads(raw)]
            return segs if sum(x.size for x in segs) >= 40 else None

        segs = await _wait(segments, 150, "every household in a segment")
        assert 1 <= len(segs) <= 7
        assert len({x.label for x in segs}) == len(segs)
        assert all(x.kind in ("ordinary", "premium", "potential", "sensitive", "risk") for x in segs)

        seen: list[tuple[str, str]] = []

        async def surge_alerts() -> tuple[set[str], set[str]] | None:
            recs = await kafka_consume(s.topic_alerts, 400, timeout_s=3)
            alerts = [Alert.model_validate_json(r.value) for r in recs]
            seen[:] = sorted((a.customer_id, a.rule) for a in alerts)
            hit = {a.customer_id for a in alerts if a.rule == "sudden_increase"}
            gone = {a.customer_id for a in alerts if a.rule == "sustained_drop"}
            return (hit, gone) if surged <= hit and dropped <= gone else None

        try:
            hit, gone = await _wait(
                surge_alerts, 120, f"alerts for surges {sorted(surged)} / drops {sorted(dropped)}"
            )
        except AssertionError as e:
            raise AssertionError(f"{e}; alerts seen: {seen}") from None
        # the injected surges and drops are found; alerts on other households stay rare
        assert len(hit - surged) <= 2, sorted(hit - surged)
        assert len(gone - dropped) <= 2, sorted(gone - dropped)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(errors="replace")
