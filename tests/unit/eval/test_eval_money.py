"""The money evaluation (eval/eval_money.py) on the real London sample kept in the repository."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EVAL = Path(__file__).resolve().parents[3] / "eval"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EVAL / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # eval_money imports eval_london by name in main()
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_money_rules_on_the_sample_leave_unsolicited_alerts_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from meterwatch.cli.sample_data import sample_dir

    monkeypatch.setenv("MW_SHARED_DATA", str(sample_dir()))
    london = _load("eval_london")
    money = _load("eval_money")
    table = london.load(0.5, 3)
    out = money.evaluate_money(table, quiet=True)
    # budgets are solicited: the unsolicited alerts are exactly those of the run without money
    assert out["budget_unsolicited_unchanged"] is True
    assert out["budget_households"] == out["households"]
    # a budget at 1.2x the median cycle cost is passed in some winter cycles, projected before reached
    bp = out["budget_per_100_cycles"]
    assert 0 < bp["budget_reached"] <= bp["budget_projected"] < 100
    # the annual-tier plan: London households use 3-4 MWh a year, so most cross tier 2 once a year;
    # at most once per tier and tariff year, so at most 2 per household-year (12 cycles)
    assert out["tier_crossing"] > 0
    years = out["customer_cycles"] / out["households"] / 12 + 1
    assert out["tier_crossing"] <= 2 * out["tier_households"] * years
    # under the tier plan the other rules keep their alerts but for the moderation's effects
    assert out["tier_other_alerts_only_without"] == 0
    assert set(out["tier_other_alerts_only_with"]) <= {"sudden_increase_escalation"}
    text = money.money_markdown(out)
    assert "tier_crossing" in text and "budget_projected" in text
