"""bootstrap / replay / simulate round trips through the real Kafka (per-test topics)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meterwatch.cli import main
from meterwatch.cli.publish import (
    InputError,
    Rejected,
    read_history,
    read_readings,
    run_bootstrap,
    run_replay,
    run_simulate,
)
from meterwatch.cli.sample_data import HALF_HOURLY, sample_dir
from meterwatch.cli.simulate import SimConfig
from meterwatch.contracts import CustomerRecord, HistoryRow, MeterReading
from meterwatch.settings import Settings

pytestmark = pytest.mark.integration

HH_2013 = sample_dir() / HALF_HOURLY  # real London half-hours, the sample kept in the repository


def _env(monkeypatch: pytest.MonkeyPatch, s: Settings) -> None:
    """Point `meterwatch` commands (which read MW_ variables) at the test's private topics."""
    monkeypatch.setenv("MW_KAFKA_BOOTSTRAP", s.kafka_bootstrap)
    for name in ("topic_readings", "topic_customers", "topic_history"):
        monkeypatch.setenv(f"MW_{name.upper()}", getattr(s, name))


HISTORY_CSV = """customer_id,day,kwh
c1,2024-01-01,7.5
c1,2024-01-02,8.25
c2,2024-01-01,12
c2,2024-01-02,-3
,2024-01-03,4
c3,2024-02-30,5
c3,2024-03-01,abc
c3,2024-03-02,1,2
c3,2024-03-03,
c4,2024-03-03,0
"""


async def test_bootstrap_round_trip_and_rejects(
    mw_settings: Settings, kafka_consume: Any, tmp_path: Path
) -> None:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY_CSV)
    report = await run_bootstrap(mw_settings, path, progress=False)
    assert report.rows == 10
    assert report.sent == {mw_settings.topic_history: 4}
    reasons = {r.row: r.reason for r in report.rejected}
    assert set(reasons) == {4, 5, 6, 7, 8, 9}
    assert "greater than or equal to 0" in reasons[4]
    assert reasons[5].startswith("customer_id")
    assert reasons[6].startswith("day")
    assert "number" in reasons[7]
    assert "malformed CSV" in reasons[8] and "1,2" in reasons[8]
    assert "missing" in reasons[9]
    recs = await kafka_consume(mw_settings.topic_history, 4)
    got = [(r.key.decode(), HistoryRow.model_validate_json(r.value)) for r in recs]
    assert sorted((k, v.day.isoformat() if v.day else None, v.kwh) for k, v in got) == [
        ("c1", "2024-01-01", 7.5),
        ("c1", "2024-01-02", 8.25),
        ("c2", "2024-01-01", 12.0),
        ("c4", "2024-03-03", 0.0),
    ]
    # all rows of one customer land in one partition (keyed by customer_id), in file order
    parts = {r.partition for r in recs if r.key == b"c1"}
    assert len(parts) == 1


async def test_bootstrap_cycles_parquet(mw_settings: Settings, kafka_consume: Any, tmp_path: Path) -> None:
    path = tmp_path / "cycles.parquet"
    table = pa.table(
        {
            "customer_id": ["a", "a", "b"],
            "start": [dt.date(2023, 1, 5), dt.date(2023, 2, 5), dt.date(2023, 1, 5)],
            "end": [dt.date(2023, 2, 4), dt.date(2023, 3, 4), None],
            "kwh": [250.0, 231.5, 99.0],
            "coverage": [1.0, 0.9, 1.0],
        }
    )
    pq.write_table(table, path)
    report = await run_bootstrap(mw_settings, path, progress=False)
    assert report.accepted == 2 and len(report.rejected) == 1
    assert "either 'day' or both 'start' and 'end'" in report.rejected[0].reason
    recs = await kafka_consume(mw_settings.topic_history, 2)
    rows = sorted((HistoryRow.model_validate_json(r.value).model_dump(mode="json") for r in recs), key=str)
    assert rows == sorted(
        [
            {
                "customer_id": "a",
                "day": None,
                "start": "2023-01-05",
                "end": "2023-02-04",
                "kwh": 250.0,
                "coverage": 1.0,
            },
            {
                "customer_id": "a",
                "day": None,
                "start": "2023-02-05",
                "end": "2023-03-04",
                "kwh": 231.5,
                "coverage": 0.9,
            },
        ],
        key=str,
    )


def test_bootstrap_cli_reports_rejects(
    mw_settings: Settings, kafka_consume: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import asyncio

    _env(monkeypatch, mw_settings)
    path = tmp_path / "history.csv"
    path.write_text(HISTORY_CSV)
    rejects = tmp_path / "rejects.jsonl"
    rc = main(["bootstrap", str(path), "--rejects", str(rejects), "--fail-on-reject", "--no-progress"])
    assert rc == 1  # rows were rejected and we asked to fail on that
    out, err = capsys.readouterr()
    assert "4 valid, 6 rejected" in out
    assert err.count("rejected row") == 6
    lines = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [x["row"] for x in lines] == [4, 5, 6, 7, 8, 9]
    assert lines[0]["raw"] == {"customer_id": "c2", "day": "2024-01-02", "kwh": "-3"}
    recs = asyncio.run(kafka_consume(mw_settings.topic_history, 4))
    assert len(recs) == 4
    # a file that cannot be read at all: exit 2 with a message, nothing published
    assert main(["bootstrap", str(tmp_path / "missing.csv")]) == 2
    (tmp_path / "x.csv").write_text("who,when\n1,2\n")
    assert main(["bootstrap", str(tmp_path / "x.csv")]) == 2
    assert "missing column" in capsys.readouterr().err


async def test_replay_london_halfhourly(mw_settings: Settings, kafka_consume: Any) -> None:
    n = 600
    report = await run_replay(
        mw_settings, HH_2013, limit=n, timezone="Europe/London", ts_marks="start", customer_from_meter=True,
        progress=False,
    )  # fmt: skip
    assert report.rows == n and not report.rejected
    assert report.sent == {mw_settings.topic_readings: n}
    recs = await kafka_consume(mw_settings.topic_readings, n)
    assert len(recs) == n
    expected = pq.read_table(HH_2013).slice(0, n).to_pylist()
    by_key: dict[str, list[MeterReading]] = {}
    for r in recs:
        m = MeterReading.model_validate_json(r.value)
        assert r.key.decode() == m.meter_id == m.customer_id
        assert json.loads(r.value)["ts"][-6:] in ("+00:00", "+01:00") or json.loads(r.value)["ts"].endswith(
            "Z"
        )
        by_key.setdefault(m.meter_id, []).append(m)
    got = [m for k in sorted(by_key) for m in by_key[k]]  # per-key order is the file order
    assert [(m.meter_id, m.kwh) for m in got] == [(e["LCLid"], e["kwh"]) for e in expected]
    # the file marks interval starts: the first reading ends 30 minutes after midnight (GMT in January)
    first = got[0]
    assert first.ts == dt.datetime(2013, 1, 1, 0, 30, tzinfo=dt.UTC)
    assert first.interval_s == 1800


async def test_replay_daily_csv_and_bad_rows(
    mw_settings: Settings, kafka_consume: Any, tmp_path: Path
) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(
        "LCLid,day,energy_sum\nM1,2013-03-30,7.25\nM1,2013-03-31,6.5\nM1,not-a-day,3\nM2,2013-03-31,-1\n"
    )
    report = await run_replay(mw_settings, path, timezone="Europe/London", progress=False)
    assert report.accepted == 2
    assert [r.row for r in report.rejected] == [3, 4]
    recs = await kafka_consume(mw_settings.topic_readings, 2)
    vals = sorted(json.loads(r.value)["ts"] for r in recs)
    # the reading of a day ends at the next local midnight (DST starts on 2013-03-31 in London)
    assert vals == ["2013-03-31T00:00:00Z", "2013-04-01T00:00:00+01:00"]
    assert {json.loads(r.value)["interval_s"] for r in recs} == {86400}


def test_readers_refuse_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(read_history(tmp_path / "nope.csv"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        list(read_readings(tmp_path / "a.txt"))
    (tmp_path / "b.csv").write_text("meter_id,kwh\nm,1\n")
    with pytest.raises(InputError, match="ts"):
        list(read_readings(tmp_path / "b.csv"))


def test_register_readings_are_replayed_as_register(tmp_path: Path) -> None:
    p = tmp_path / "reg.csv"
    p.write_text("meter_id,ts,register_kwh,quality\nm,2024-05-01T10:00:00+08:00,1234.5,estimated\n")
    (r,) = list(read_readings(p))
    assert not isinstance(r, Rejected)
    assert r.register_kwh == 1234.5 and r.kwh is None and r.quality == "estimated"


async def test_simulate_publishes_what_it_generates(mw_settings: Settings, kafka_consume: Any) -> None:
    cfg = SimConfig(customers=6, days=1, start=dt.date(2026, 2, 2), history_days=5, surge_share=0.5, seed=3)
    report = await run_simulate(mw_settings, cfg, progress=False)
    assert report.sent == {
        mw_settings.topic_customers: 6,
        mw_settings.topic_history: 30,
        mw_settings.topic_readings: 6 * 48,
    }
    customers = await kafka_consume(mw_settings.topic_customers, 6)
    recs = [CustomerRecord.model_validate_json(r.value) for r in customers]
    assert sorted(r.customer_id for r in recs) == [f"sim-{i:05d}" for i in range(6)]
    assert all(r.key.decode() == CustomerRecord.model_validate_json(r.value).customer_id for r in customers)
    readings = await kafka_consume(mw_settings.topic_readings, 6 * 48)
    per_meter = Counter(r.key.decode() for r in readings)
    assert per_meter == {f"simm-{i:05d}": 48 for i in range(6)}
    # identical to the dry-run file of the same simulation
    from meterwatch.cli.publish import simulation_messages

    expected = sorted(
        (k, v) for t, k, v in simulation_messages(mw_settings, cfg) if t == mw_settings.topic_readings
    )
    assert sorted((r.key, r.value) for r in readings) == expected


def test_simulate_cli_publishes_in_parts(
    mw_settings: Settings, kafka_consume: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import asyncio

    _env(monkeypatch, mw_settings)
    common = ["simulate", "--customers", "5", "--days", "1", "--start", "2026-01-05", "--history-days", "2"]
    assert main([*common, "--parts", "customers,history", "--no-progress"]) == 0
    assert "published 15 messages" in capsys.readouterr().out
    assert main([*common, "--parts", "readings", "--no-progress", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["readings"] == 5 * 48
    assert "published 240 messages" in err
    assert len(asyncio.run(kafka_consume(mw_settings.topic_readings, 240))) == 240
    assert len(asyncio.run(kafka_consume(mw_settings.topic_customers, 5))) == 5
    with pytest.raises(SystemExit):
        main([*common, "--parts", "bills"])


async def test_replay_clock_paces_by_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """--speed X: the wait before each reading is (its ts - the first ts) / X, minus time already spent."""
    from meterwatch.cli.publish import producer as publish

    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)

    clock_now = [100.0]
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)  # the modules the producer calls through
    monkeypatch.setattr(time, "perf_counter", lambda: clock_now[0])
    clock = publish.ReplayClock(speed=60.0)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    await clock.wait_for(t0)  # the first reading starts the clock
    await clock.wait_for(t0 + dt.timedelta(minutes=30))  # 1800 s of data at 60x -> 30 s
    clock_now[0] += 10.0  # 10 s already spent publishing
    await clock.wait_for(t0 + dt.timedelta(minutes=60))  # due at 60 s, 10 s elapsed -> 50 s
    assert waits == [30.0, 50.0]
    waits.clear()
    fast = publish.ReplayClock(speed=0.0)  # as fast as possible: never sleeps
    await fast.wait_for(t0)
    await fast.wait_for(t0 + dt.timedelta(days=1))
    assert waits == []


async def test_wait_for_worker_gives_up_quickly_without_a_worker(mw_settings: Settings) -> None:
    from meterwatch.cli.publish import wait_until_consumed

    cfg = SimConfig(customers=3, days=1, start=dt.date(2026, 2, 2), history_days=2, seed=1)
    report = await run_simulate(mw_settings, cfg, progress=False, parts=("history",))
    assert report.sent == {mw_settings.topic_history: 6}
    done, note = await wait_until_consumed(
        mw_settings, mw_settings.topic_history, timeout_s=30, first_commit_s=1.0
    )
    assert not done and "no worker" in note


async def _commit_history_as_the_worker(settings: Settings, n: int, *, stay: bool) -> Any:
    """Consume ``n`` history messages in the worker's group (settings.app_id) and commit them."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.topic_history,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got = 0
    for _ in range(100):
        batch = await consumer.getmany(timeout_ms=500)
        got += sum(len(v) for v in batch.values())
        if got >= n:
            break
    assert got == n
    await consumer.commit()
    if stay:
        return consumer
    await consumer.stop()  # leaves the group: it has offsets but no member
    return None


async def test_wait_for_worker_does_not_wait_for_an_old_group_without_members(mw_settings: Settings) -> None:
    """An earlier worker left committed offsets; none runs now: the wait says so and ends early."""
    from meterwatch.cli.publish import group_members, wait_until_consumed

    cfg = SimConfig(customers=3, days=1, start=dt.date(2026, 2, 2), history_days=2, seed=1)
    await run_simulate(mw_settings, cfg, progress=False, parts=("history",))
    await _commit_history_as_the_worker(mw_settings, 6, stay=False)
    await run_simulate(mw_settings, cfg, progress=False, parts=("history",))  # 6 more, unconsumed
    lines: list[str] = []
    done, note = await wait_until_consumed(
        mw_settings, mw_settings.topic_history, timeout_s=60, first_commit_s=1.0, say=lines.append
    )
    assert not done
    assert "no worker is running" in note and "no active members" in note and "6 messages behind" in note
    assert lines and lines[0].startswith("waiting") and mw_settings.app_id in lines[0]
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=mw_settings.kafka_bootstrap)
    await admin.start()
    try:
        assert await group_members(admin, mw_settings.app_id) == ("Empty", 0)
    finally:
        await admin.close()


async def test_wait_for_worker_waits_for_a_live_member(mw_settings: Settings) -> None:
    from meterwatch.cli.publish import wait_until_consumed

    cfg = SimConfig(customers=3, days=1, start=dt.date(2026, 2, 2), history_days=2, seed=1)
    await run_simulate(mw_settings, cfg, progress=False, parts=("history",))
    consumer = await _commit_history_as_the_worker(mw_settings, 6, stay=True)
    try:
        done, note = await wait_until_consumed(
            mw_settings, mw_settings.topic_history, timeout_s=60, first_commit_s=1.0
        )
    finally:
        await consumer.stop()
    assert done and "has consumed" in note
