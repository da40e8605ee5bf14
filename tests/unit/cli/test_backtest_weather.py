"""`meterwatch backtest --weather FILE` (issue #15 item 1): a cold snap on an electric-heating home
is expected use; both weather file forms read the same."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from meterwatch.cli import main
from meterwatch.contracts import Alert

D0 = dt.date(2013, 6, 1)
DAYS = 207  # the last week: a cold snap from 18 December 2013


def _temps() -> list[float]:
    rng = random.Random(5)
    out = []
    for i in range(DAYS):
        t = 17.0 - 9.0 * min(1.0, max(0.0, i - 60) / 120) + rng.uniform(-3.0, 3.0)
        out.append(-4.0 + rng.uniform(-1.0, 1.0) if i >= DAYS - 7 else t)
    return out


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    temps = _temps()
    rows = ["meter_id,day,kwh"]
    mw = ["region,day,temp_mean_c"]
    ds = ["temperatureMax,time,temperatureMin,summary"]
    for i, t in enumerate(temps):
        d = (D0 + dt.timedelta(days=i)).isoformat()
        rows.append(f"m-1,{d},{6.0 + 1.5 * max(0.0, 15.5 - t) * (0.9 + 0.05 * (i % 5)):.3f}")
        mw.append(f"*,{d},{t:.2f}")
        ds.append(f"{t + 3.0:.2f},{d} 00:00:00,{t - 3.0:.2f},Cold.")
    paths = tmp_path / "r.csv", tmp_path / "w.csv", tmp_path / "ds.csv"
    for p, lines in zip(paths, (rows, mw, ds), strict=True):
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _run(tmp_path: Path, readings: Path, *extra: str) -> tuple[int, list[Alert]]:
    out = tmp_path / "a.jsonl"
    out.unlink(missing_ok=True)
    rc = main(["backtest", "--readings", str(readings), "--out", str(out), "--jobs", "1", *extra])
    text = out.read_text() if out.exists() else ""
    return rc, [Alert.model_validate_json(line) for line in text.splitlines()]


def test_a_cold_snap_alerts_only_without_the_weather_in_either_file_form(tmp_path: Path) -> None:
    readings, mw, ds = _files(tmp_path)
    rc, plain = _run(tmp_path, readings)
    assert rc == 0 and [a.rule for a in plain] == ["sudden_increase"]
    for weather in (mw, ds):
        rc, got = _run(tmp_path, readings, "--weather", str(weather))
        assert rc == 0 and got == [], weather.name


def test_a_bad_weather_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readings, _, _ = _files(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("city,when,temp\nLondon,2013-01-01,4\n", encoding="utf-8")
    rc, _ = _run(tmp_path, readings, "--weather", str(bad))
    assert rc == 2 and "not a weather file" in capsys.readouterr().err
    bad.write_text("region,day,temp_mean_c\n*,2013-01-01,warm\n", encoding="utf-8")
    rc, _ = _run(tmp_path, readings, "--weather", str(bad))
    assert rc == 2 and "bad.csv:2: unusable weather row" in capsys.readouterr().err
    rc, _ = _run(tmp_path, readings, "--weather", str(tmp_path / "none.csv"))
    assert rc == 2 and "none.csv" in capsys.readouterr().err


def test_publish_weather_refuses_a_file_the_contract_refuses_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meterwatch.cli.commands.weather_cmds import weather_days

    _, mw, ds = _files(tmp_path)
    days = weather_days(mw, None)
    assert len(days) == DAYS and {d.region for d in days} == {"*"}
    assert {d.region for d in weather_days(ds, "GB-ENG")} == {"GB-ENG"}
    bad = tmp_path / "bad.csv"
    bad.write_text("region,day,temp_mean_c\nlondon,2013-01-01,4.0\n", encoding="utf-8")
    assert main(["publish-weather", "--file", str(bad)]) == 2
    assert "bad.csv: london 2013-01-01: String should match pattern" in capsys.readouterr().err
    bad.write_text("region,day,temp_mean_c\n*,2013-01-01,140.0\n", encoding="utf-8")
    assert main(["publish-weather", "--file", str(bad)]) == 2
    assert "less than or equal to 60" in capsys.readouterr().err
