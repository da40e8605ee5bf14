"""The household simulator: determinism, shape (daily, weekly, seasonal, holidays), surges, contracts."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from meterwatch.cli import main
from meterwatch.cli.simulate import (
    SimConfig,
    daily_matrix,
    encoded_readings,
    generate_history,
    generate_readings,
    holiday,
    make_households,
    summarise,
)
from meterwatch.contracts import CustomerRecord, HistoryRow, MeterReading

CFG = SimConfig(customers=40, days=4, start=dt.date(2026, 3, 2), surge_share=0.25, seed=11, history_days=400)


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a = list(encoded_readings(make_households(CFG), CFG))
    b = list(encoded_readings(make_households(CFG), CFG))
    c = list(encoded_readings(make_households(replace(CFG, seed=12)), replace(CFG, seed=12)))
    assert a == b
    assert len(a) == len(c) == 40 * 48 * 4
    assert a != c


def test_everything_validates_against_the_contracts() -> None:
    hh = make_households(CFG)
    recs = [CustomerRecord.model_validate(h.customer_record(CFG.timezone)) for h in hh]
    assert len({r.customer_id for r in recs}) == 40
    assert {r.phone for r in recs} == {f"+86{13800000000 + i}" for i in range(40)}
    assert all(r.timezone == "Asia/Shanghai" and r.meter_ids for r in recs)
    assert len({r.manager_id for r in recs}) == 2  # one manager per 25 customers
    for d in generate_readings(hh, CFG):
        r = MeterReading.model_validate(d)
        assert r.ts.utcoffset() == dt.timedelta(hours=8)
    rows = [HistoryRow.model_validate(d) for d in generate_history(hh, CFG)]
    assert len(rows) == 40 * 400
    assert max(r.day for r in rows if r.day) == CFG.start - dt.timedelta(days=1)


def test_injected_surge_is_where_the_summary_says() -> None:
    hh = make_households(CFG)
    summary = summarise(hh, CFG)
    assert len(summary.surges) == 10
    calm_cfg = replace(CFG, surge_share=0.0)
    calm_hh = make_households(calm_cfg)
    by_meter: dict[str, dict[str, float]] = defaultdict(dict)
    for r in generate_readings(hh, CFG):
        by_meter[r["meter_id"]][r["ts"]] = r["kwh"]
    calm: dict[str, dict[str, float]] = defaultdict(dict)
    for r in generate_readings(calm_hh, calm_cfg):
        calm[r["meter_id"]][r["ts"]] = r["kwh"]
    surged = {s["meter_id"]: s for s in summary.surges}
    window_end = CFG.start + dt.timedelta(days=CFG.days)
    checked = 0
    for meter, series in by_meter.items():
        if meter not in surged:
            assert series == calm[meter]  # households without a surge are untouched
            continue
        calm_h = next(h for h in calm_hh if h.meter_id == meter)
        if any(a <= window_end and b >= CFG.start for a, b in calm_h.vacancies):
            continue  # (a surge household is kept at home; its calm twin was away)
        onset = dt.datetime.fromisoformat(surged[meter]["onset"])
        factor = surged[meter]["factor"]
        before = [ts for ts in series if dt.datetime.fromisoformat(ts) <= onset]
        after = [ts for ts in series if dt.datetime.fromisoformat(ts) > onset]
        assert after, "onset inside the window"
        assert all(series[t] == calm[meter][t] for t in before)
        ratio_after = sum(series[t] for t in after) / sum(calm[meter][t] for t in after)
        assert abs(ratio_after - factor) < 0.01 * factor
        assert 3.0 <= factor <= 6.0
        checked += 1
    assert checked >= 7


def test_seasonal_weekly_and_daily_shape() -> None:
    cfg = replace(CFG, customers=60, surge_share=0.0, history_days=0)
    hh = make_households(cfg)
    # seasons: the expected use in late July and mid-January beats April and October
    days = [dt.date(2025, 4, 15), dt.date(2025, 7, 29), dt.date(2025, 10, 15), dt.date(2025, 1, 14)]
    m = daily_matrix(hh, days, cfg.seed).sum(axis=1)
    assert m[1] > 1.2 * m[0] and m[3] > m[2]
    # weekends: on average higher than weekdays (weekend factor 0.95..1.3)
    week = [dt.date(2025, 5, 12) + dt.timedelta(days=i) for i in range(28)]
    wm = daily_matrix(hh, week, cfg.seed).sum(axis=1)
    weekend = np.mean([wm[i] for i, d in enumerate(week) if d.weekday() >= 5])
    weekday = np.mean([wm[i] for i, d in enumerate(week) if d.weekday() < 5])
    assert weekend > weekday
    # daily shape: evening (18-22h) above the small hours (1-5h) for the whole population
    by_hour: dict[int, float] = defaultdict(float)
    for r in generate_readings(hh, cfg):
        end = dt.datetime.fromisoformat(r["ts"])
        by_hour[(end - dt.timedelta(seconds=1)).hour] += r["kwh"]
    assert sum(by_hour[h] for h in range(18, 22)) > 2 * sum(by_hour[h] for h in range(1, 5))


def test_holidays_and_vacancies() -> None:
    assert holiday(dt.date(2026, 2, 16)) == "spring_festival"  # eve
    assert holiday(dt.date(2026, 2, 24)) is None
    cfg = SimConfig(customers=200, days=1, start=dt.date(2026, 3, 2), surge_share=0.0, seed=5, history_days=0)
    hh = make_households(cfg)
    fest = dt.date(2026, 2, 18)
    normal = dt.date(2026, 3, 11)
    m = daily_matrix(hh, [fest, normal], cfg.seed)
    travellers = [i for i, h in enumerate(hh) if h.travels and not h.vacant(fest) and not h.vacant(normal)]
    stay = [i for i, h in enumerate(hh) if not h.travels and not h.vacant(fest) and not h.vacant(normal)]
    assert len(travellers) > 30 and len(stay) > 30
    assert m[0, travellers].sum() < 0.2 * m[1, travellers].sum()
    assert m[0, stay].sum() > m[1, stay].sum()
    vac = [(i, h.vacancies[0]) for i, h in enumerate(hh) if h.vacancies]
    assert vac
    i, (a, _) = vac[0]
    mv = daily_matrix(hh, [a], cfg.seed)
    assert mv[0, i] < 0.1 * hh[i].level


def test_cli_simulate_out_writes_every_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.jsonl"
    rc = main(
        [
            "simulate", "--customers", "7", "--days", "1", "--start", "2026-01-05", "--history-days", "3",
            "--surge-share", "0.3", "--seed", "2", "--out", str(out), "--no-progress",
        ]
    )  # fmt: skip
    assert rc == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    topics: defaultdict[str, int] = defaultdict(int)
    for m in lines:
        topics[m["topic"]] += 1
    assert dict(topics) == {"customers": 7, "meterwatch-history": 21, "meter-readings": 7 * 48}
    text = capsys.readouterr().out
    assert "customers: 7" in text and "surges injected: 2" in text
    surged = [ln.split()[0] for ln in text.splitlines() if ln.startswith("  sim-")]
    assert len(surged) == 2
    # the same command again gives the same file
    out2 = tmp_path / "sim2.jsonl"
    main(["simulate", "--customers", "7", "--days", "1", "--start", "2026-01-05", "--history-days", "3",
          "--surge-share", "0.3", "--seed", "2", "--out", str(out2), "--no-progress"])  # fmt: skip
    assert out2.read_bytes() == out.read_bytes()


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["simulate", "--customers", "0"],
        ["simulate", "--surge-share", "2"],
        ["simulate", "--interval", "7"],
        ["simulate", "--start", "yesterday"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_cli_unreachable_kafka_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MW_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # nothing listens there
    rc = main(["simulate", "--customers", "2", "--days", "1", "--history-days", "0", "--no-progress"])
    assert rc == 3
    assert "error: Kafka at 127.0.0.1:1" in capsys.readouterr().err


def test_injected_drop_is_standby_from_its_day() -> None:
    cfg = SimConfig(customers=50, days=3, start=dt.date(2026, 3, 2), surge_share=0.0, drop_share=0.1, seed=8,
                    history_days=30)  # fmt: skip
    hh = make_households(cfg)
    summary = summarise(hh, cfg)
    assert len(summary.drops) == 5
    drops = {d["customer_id"]: dt.date.fromisoformat(d["from"]) for d in summary.drops}
    assert set(drops.values()) == {cfg.start - dt.timedelta(days=11)}
    hist: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in generate_history(hh, cfg):
        hist[r["customer_id"]].append((r["day"], r["kwh"]))
    for h in hh:
        if h.customer_id not in drops:
            continue
        before = [k for d, k in hist[h.customer_id] if dt.date.fromisoformat(d) < drops[h.customer_id]]
        after = [k for d, k in hist[h.customer_id] if dt.date.fromisoformat(d) >= drops[h.customer_id]]
        assert len(after) == 11 and max(after) < 0.1 * h.level < 0.5 * sorted(before)[len(before) // 2]
        window = [r["kwh"] for r in generate_readings([h], cfg)]
        assert sum(window) / cfg.days < 0.1 * h.level


def test_cli_simulate_puts_every_household_on_the_tariff_plan_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim.jsonl"
    argv = ["simulate", "--customers", "3", "--days", "1", "--history-days", "0", "--no-progress"]
    assert main([*argv, "--out", str(out), "--tariff-plan", "cn-zj-residential-tou"]) == 0
    recs = [
        CustomerRecord.model_validate(m["value"])
        for m in map(json.loads, out.read_text().splitlines())
        if m["topic"] == "customers"
    ]
    assert [r.tariff_plan for r in recs] == ["cn-zj-residential-tou"] * 3
    # without the option the records name no plan (no money), as before
    assert main([*argv, "--out", str(out)]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["topic"] == "customers" and "tariff_plan" not in first["value"]
    # an id the catalogue lacks is refused before anything is written
    out.unlink()
    assert main([*argv, "--out", str(out), "--tariff-plan", "cn-nowhere"]) == 2
    assert "unknown tariff plan 'cn-nowhere'" in capsys.readouterr().err and not out.exists()


def test_cli_simulate_with_a_missing_tariff_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MW_TARIFFS_FILE", str(tmp_path / "nowhere.json"))
    argv = ["simulate", "--customers", "1", "--days", "1", "--history-days", "0", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o.jsonl"), "--tariff-plan", "cn-js-residential"]) == 2
    assert "error: tariff catalogue" in capsys.readouterr().err
