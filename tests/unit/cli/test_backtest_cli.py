"""`meterwatch backtest` end to end (files in, JSON Lines out)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from meterwatch.cli import main
from meterwatch.contracts import Alert


def _write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_daily_csv_with_customers_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    d0 = dt.date(2024, 1, 1)
    for i in range(120):
        d = d0 + dt.timedelta(days=i)
        rows.append(f"m-1,{d.isoformat()},{6.0 + (i % 3) * 0.5}")
        rows.append(f"m-2,{d.isoformat()},{(6.0 if i < 80 else 30.0)}")
    rows.append(rows[10])  # a duplicate row
    rows.append("m-2,2024-02-01,-3")  # a bad row
    readings = tmp_path / "r.csv"
    _write_csv(readings, "meter_id,day,kwh", rows)
    customers = tmp_path / "c.jsonl"
    customers.write_text(
        json.dumps({"customer_id": "m-2", "read_day": 15, "timezone": "Asia/Shanghai", "manager_id": "mgr"})
        + "\n"
    )
    out = tmp_path / "alerts.jsonl"
    rc = main(["backtest", "--readings", str(readings), "--customers", str(customers), "--out", str(out)])
    assert rc == 0
    alerts = [Alert.model_validate_json(line) for line in out.read_text().splitlines()]
    assert [(a.customer_id, a.rule) for a in alerts] == [("m-2", "sudden_increase")]
    a = alerts[0]
    assert a.manager_id == "mgr" and a.cycle.start == dt.date(2024, 3, 15)
    assert '"zh-CN"' in out.read_text()
    text = capsys.readouterr().out
    assert "sudden_increase" in text and "duplicates 1" in text and "rejected 1" in text
    assert "per 100 cust-cycles" in text


def test_interval_parquet_with_lclid(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
    n = 48 * 10
    ts = [t0 + dt.timedelta(minutes=30 * (i + 1)) for i in range(n)]
    table = pa.table(
        {"LCLid": ["MAC1"] * n, "tstp": pa.array(ts, pa.timestamp("us", tz="UTC")), "kwh": [0.25] * n}
    )
    path = tmp_path / "hh.parquet"
    pq.write_table(table, path)
    out = tmp_path / "a.jsonl"
    assert main(["backtest", "--readings", str(path), "--out", str(out), "--no-progress"]) == 0
    assert out.read_text() == ""


def test_bad_input_gives_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readings = tmp_path / "r.csv"
    _write_csv(readings, "who,day,kwh", ["a,2024-01-01,1"])
    rc = main(["backtest", "--readings", str(readings), "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert rc == 2
    assert "no customer column" in capsys.readouterr().err
    rc = main(
        ["backtest", "--readings", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o.jsonl")]
    )
    assert rc == 2
    bad = tmp_path / "c.csv"
    _write_csv(bad, "customer_id,read_day", ["c1,31"])
    _write_csv(readings, "customer_id,day,kwh", ["c1,2024-01-01,1"])
    rc = main(
        ["backtest", "--readings", str(readings), "--customers", str(bad), "--out", str(tmp_path / "o")]
    )
    assert rc == 2
    assert "read_day" in capsys.readouterr().err


def test_interval_csv_needs_offsets_and_counts_register_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readings = tmp_path / "r.csv"
    _write_csv(readings, "meter_id,ts,kwh", ["m1,2024-01-01T00:30:00,0.5"])
    rc = main(["backtest", "--readings", str(readings), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    assert "offset" in capsys.readouterr().err
    # register reads: one backwards read is rejected with its reason, the rest is booked
    rows = [
        "c1,2024-01-01T00:00:00+00:00,100.0",
        "c1,2024-01-02T00:00:00+00:00,110.0",
        "c1,2024-01-03T00:00:00+00:00,105.0",
        "c1,2024-01-04T00:00:00+00:00,125.0",
    ]
    _write_csv(readings, "customer_id,ts,register_kwh", rows)
    rc = main(["backtest", "--readings", str(readings), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "rejected 1" in out and "baselines.readings.register_backwards: 1" in out


def _daily_rows(n: int = 40) -> list[str]:
    d0 = dt.date(2024, 1, 1)
    return [f"c1,{(d0 + dt.timedelta(days=i)).isoformat()},{5.0 + i % 3}" for i in range(n)]


def _no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading the input an error: the checks must come first."""
    import meterwatch.cli.feed as feed

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the input was read before the arguments were checked")

    monkeypatch.setattr(feed, "read_table", refuse)


def test_out_is_checked_before_the_input_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = tmp_path / "r.csv"
    _write_csv(readings, "customer_id,day,kwh", _daily_rows())
    _no_reading(monkeypatch)
    for out, why in ((tmp_path / "no-dir" / "a.jsonl", "no such directory"), (tmp_path, "is a directory")):
        rc = main(["backtest", "--readings", str(readings), "--out", str(out)])
        assert rc == 2
        err = capsys.readouterr().err
        assert "--out" in err and why in err and len(err.strip().splitlines()) == 1


def test_timezone_is_checked_before_the_input_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = tmp_path / "r.csv"
    _write_csv(readings, "customer_id,day,kwh", _daily_rows())
    _no_reading(monkeypatch)
    rc = main(
        ["backtest", "--readings", str(readings), "--out", str(tmp_path / "a"), "--timezone", "Mars/Base"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "--timezone" in err and "Mars/Base" in err
    assert not (tmp_path / "a").exists()


def test_a_missing_input_says_no_such_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.parquet"
    assert main(["backtest", "--readings", str(missing), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert f"no such file: {missing}" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readings = tmp_path / "r.csv"
    _write_csv(readings, "customer_id,day,kwh", _daily_rows())
    out = tmp_path / "o.jsonl"
    assert main(["backtest", "--readings", str(readings), "--out", str(out)]) == 0  # capsys: not a tty
    cap = capsys.readouterr()
    assert "backtest:" not in cap.err and "rows/s]" not in cap.err
    assert "rows 40" in cap.out
    assert main(["backtest", "--readings", str(readings), "--out", str(out), "--progress"]) == 0
    assert "backtest:" in capsys.readouterr().err  # asked for: shown
