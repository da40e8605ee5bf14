"""The backtest across processes gives the same result as in one process (alerts in the same order)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from meterwatch.cli import main
from meterwatch.cli.feed import run_table, table_from_pydict
from meterwatch.cli.parallel import run_table_parallel


def _table() -> object:
    ids, days, kwh = [], [], []
    d0 = dt.date(2024, 1, 1)
    for c in range(12):
        for i in range(150):
            ids.append(f"m-{c:02d}")
            days.append((d0 + dt.timedelta(days=i)).isoformat())
            surge = c % 3 == 0 and 100 <= i < 110
            kwh.append(30.0 if surge else 6.0 + (i % 4) * 0.5 + c * 0.1)
    ids.append("m-03")  # a conflicting duplicate: rejected, counted
    days.append(d0.isoformat())
    kwh.append(99.0)
    return table_from_pydict({"meter_id": ids, "day": days, "kwh": kwh})


def test_processes_give_the_same_alerts_in_the_same_order() -> None:
    t = _table()
    one = run_table(t)
    many = run_table_parallel(t, jobs=2, chunk_rows=400)
    assert one.alerts, "the table must make alerts for the comparison to mean anything"
    assert [a.to_json() for a in many.alerts] == [a.to_json() for a in one.alerts]
    assert many.summary() == one.summary()
    assert many.cycles_by_customer == one.cycles_by_customer
    assert list(many.cycles_by_customer) == list(one.cycles_by_customer)


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    readings = tmp_path / "r.csv"
    readings.write_text("meter_id,day,kwh\nm,2024-01-01,1\n")
    assert main(["backtest", "--readings", str(readings), "--out", str(tmp_path / "a"), "--jobs", "0"]) == 2
