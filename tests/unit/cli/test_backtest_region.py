"""`meterwatch backtest --region`: the holiday calendar of customers without a record (issue #15)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from meterwatch.cli import main
from meterwatch.contracts import Alert


def _run(tmp_path: Path, *extra: str) -> tuple[int, list[Alert]]:
    """m-1: a steady autumn, then five times its use over Christmas 2023 (25 Dec - 1 Jan)."""
    rows = ["meter_id,day,kwh"]
    d0 = dt.date(2023, 10, 1)
    for i in range(110):
        d = d0 + dt.timedelta(days=i)
        holiday = dt.date(2023, 12, 25) <= d <= dt.date(2024, 1, 1)
        rows.append(f"m-1,{d.isoformat()},{(6.0 + (i % 3) * 0.5) * (5.0 if holiday else 1.0)}")
    readings = tmp_path / "r.csv"
    readings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "a.jsonl"
    out.unlink(missing_ok=True)
    rc = main(["backtest", "--readings", str(readings), "--out", str(out), "--jobs", "1", *extra])
    text = out.read_text() if out.exists() else ""
    return rc, [Alert.model_validate_json(line) for line in text.splitlines()]


def test_a_christmas_at_home_alerts_only_without_the_calendar(tmp_path: Path) -> None:
    rc, plain = _run(tmp_path)
    assert rc == 0 and plain and {a.rule for a in plain} == {"sudden_increase"}
    rc, gb = _run(tmp_path, "--region", "GB-ENG")
    assert rc == 0 and gb == []


def test_an_unknown_region_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = _run(tmp_path, "--region", "XX")
    assert rc == 2 and "--region: " in capsys.readouterr().err
    rc, _ = _run(tmp_path, "--region", "GB-ZZ")
    assert rc == 2 and "no subdivision 'ZZ'" in capsys.readouterr().err
