"""The backtest across processes gives the same result as in one process (alerts in the same order),
with and without money (tariff plans, budgets)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from baselines.plans import Tariffs
from meterwatch.cli import main
from meterwatch.cli.commands.backtest_cmds import write_alerts
from meterwatch.cli.feed import run_table, table_from_pydict
from meterwatch.cli.parallel import run_table_parallel
from meterwatch.contracts import Budget, CustomerRecord


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


def _money_customers() -> dict[str, CustomerRecord]:
    """Records for some of the table's meters: a flat plan, budgets (the others: the default plan)."""
    recs = [
        CustomerRecord(customer_id="c-00", meter_ids=["m-00"], tariff_plan="uk-london-standard"),
        CustomerRecord(
            customer_id="c-03",
            meter_ids=["m-03"],
            tariff_plan="uk-london-standard",
            budget=Budget(amount=40, currency="GBP"),
        ),
        CustomerRecord(customer_id="c-05", meter_ids=["m-05"], budget=Budget(amount=50, currency="CNY")),
        CustomerRecord(customer_id="c-07", meter_ids=["m-07"], budget=Budget(amount=90, currency="CNY")),
    ]
    return {r.customer_id: r for r in recs}


def test_processes_give_the_same_alert_file_with_money(tmp_path: Path) -> None:
    t = _table()
    customers, tariffs = _money_customers(), Tariffs.default({"residential": "cn-js-residential"})
    one = run_table(t, customers=customers, tariffs=tariffs)
    many = run_table_parallel(t, jobs=2, chunk_rows=400, customers=customers, tariffs=tariffs)
    assert sum(1 for a in one.alerts if a.money is not None) >= 3, "alerts must carry money"
    assert {a.money.currency for a in one.alerts if a.money is not None} == {"CNY", "GBP"}
    assert one.solicited() >= 1, "budget alerts must occur for the comparison to mean anything"
    write_alerts(one.alerts, tmp_path / "one.jsonl")
    write_alerts(many.alerts, tmp_path / "many.jsonl")
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert many.summary() == one.summary()
