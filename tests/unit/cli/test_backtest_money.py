"""`meterwatch backtest` with money: --tariffs / --tariff-plan / the customers file's plan."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from meterwatch.cli import main
from meterwatch.contracts import Alert

D0 = dt.date(2024, 1, 1)


def _inputs(tmp_path: Path, plan: str | None = None) -> tuple[Path, Path]:
    """m-2 jumps from 6 to 30 kWh a day on 2024-03-21 (read day 1, Europe/London)."""
    rows = ["meter_id,day,kwh"]
    for i in range(100):
        d = (D0 + dt.timedelta(days=i)).isoformat()
        rows += [f"m-1,{d},{6.0 + (i % 3) * 0.5}", f"m-2,{d},{6.0 if i < 80 else 30.0}"]
    readings = tmp_path / "r.csv"
    readings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rec: dict[str, object] = {"customer_id": "m-2", "read_day": 1, "timezone": "Europe/London"}
    if plan is not None:
        rec["tariff_plan"] = plan
    customers = tmp_path / "c.jsonl"
    customers.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    return readings, customers


def _run(tmp_path: Path, *extra: str, plan: str | None = None) -> tuple[int, list[Alert], str]:
    readings, customers = _inputs(tmp_path, plan)
    out = tmp_path / "a.jsonl"
    out.unlink(missing_ok=True)
    rc = main(
        ["backtest", "--readings", str(readings), "--customers", str(customers), "--out", str(out), *extra]
    )
    text = out.read_text() if out.exists() else ""
    return rc, [Alert.model_validate_json(line) for line in text.splitlines()], text


def test_the_customers_plan_prices_its_alert_to_the_cent_and_no_plan_means_no_money(tmp_path: Path) -> None:
    rc, plain, plain_text = _run(tmp_path)
    assert rc == 0 and [a.rule for a in plain] == ["sudden_increase"] and plain[0].money is None
    assert '"money"' not in plain_text
    rc, priced, _ = _run(tmp_path, plan="cn-js-residential")
    assert rc == 0 and [a.alert_id for a in priced] == [plain[0].alert_id]
    a = priced[0]
    assert a.money is not None and a.money.currency == "CNY"
    # March 2024 so far: 20 days x 6 kWh, then 30 kWh a day up to the alert's last complete day;
    # tariff year (from 1 Jan) far below tier 1's 2,760 kWh: all at 0.5283 CNY/kWh, no standing charge
    last = a.triggered_by.date() - dt.timedelta(days=1)
    days_high = (last - dt.date(2024, 3, 21)).days + 1
    kwh = 20 * 6 + 30 * days_high
    assert a.money.to_date == (Decimal(kwh) * Decimal("0.5283")).quantize(Decimal("0.01"))
    assert a.money.tier is not None and a.money.tier.index == 1 and a.money.tier.period == "year"
    assert "元" in a.explanation.zh_CN and "元" not in plain[0].explanation.zh_CN


def test_tariff_plan_prices_customers_without_a_plan_of_their_own(tmp_path: Path) -> None:
    rc, alerts, _ = _run(tmp_path, "--tariff-plan", "uk-london-standard")
    assert rc == 0 and alerts and all(a.money is not None and a.money.currency == "GBP" for a in alerts)
    # a plan in the customer's record wins over --tariff-plan
    rc, alerts, _ = _run(tmp_path, "--tariff-plan", "uk-london-standard", plan="cn-js-residential")
    assert rc == 0 and [a.money.currency for a in alerts if a.money is not None] == ["CNY"]


def test_unknown_plans_and_bad_catalogues_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, _ = _run(tmp_path, "--tariff-plan", "nope")
    assert rc != 0 and "--tariff-plan: unknown tariff plan 'nope'" in capsys.readouterr().err
    rc, _, _ = _run(tmp_path, plan="cn-nowhere")
    assert rc != 0 and "names unknown tariff plan 'cn-nowhere'" in capsys.readouterr().err
    bad = tmp_path / "t.json"
    bad.write_text('{"schema_version": 1, "plans": [{"id": "x"}]}', encoding="utf-8")
    rc, _, _ = _run(tmp_path, "--tariffs", str(bad))
    assert rc != 0 and "--tariffs:" in capsys.readouterr().err


def test_default_plans_from_the_settings_as_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meterwatch.settings import get_settings

    monkeypatch.setenv("MW_DEFAULT_TARIFF_PLANS", '{"residential": "uk-london-standard"}')
    get_settings.cache_clear()
    try:
        rc, alerts, _ = _run(tmp_path)
        assert rc == 0 and alerts and all(a.money is not None and a.money.currency == "GBP" for a in alerts)
    finally:
        get_settings.cache_clear()
