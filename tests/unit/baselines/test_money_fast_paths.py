"""The money fast paths change no alert: the backtest of the repository's London sample with them
and with each of them forced off (the full computation), under every shipped plan, byte for byte.

Fast paths: ``tier_crossing``'s armed mark (``_armed``; ``_armed_over_close`` over a cycle closing),
running bound (``_marked_out_of_reach``) and quick exit (``_quick_exit``; off: the full bound
``_nothing_to_warn`` decides every evaluation), and amounts written without Babel
(``baselines.tariffs.fmt._LAYOUTS``; off: Babel formats every amount).
"""

from __future__ import annotations

from unittest import mock

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import baselines.rules.tier_crossing as tc
from baselines.plans import Tariffs
from baselines.tariffs import fmt
from meterwatch.cli.feed import run_table

from .helpers import sample_data

PLANS = sorted(Tariffs.default()._plans)  # every shipped plan
HOUSEHOLDS = 12


@pytest.fixture(scope="module")
def london() -> pa.Table:
    t = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    ids = sorted(set(t.column("LCLid").cast(pa.string()).to_pylist()))[:HOUSEHOLDS]
    return t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(ids)))


def _alerts(table: pa.Table, plan: str) -> list[str]:
    res = run_table(table, tariffs=Tariffs.default({"residential": plan}))
    return [a.model_dump_json() for a in res.alerts]


@pytest.mark.parametrize("plan", PLANS)
def test_alerts_are_the_same_without_the_fast_paths(london: pa.Table, plan: str) -> None:
    fast = _alerts(london, plan)
    with (
        mock.patch.object(tc, "_armed", return_value=False),
        mock.patch.object(tc, "_armed_over_close", return_value=False),
        mock.patch.object(tc, "_marked_out_of_reach", return_value=False),
        mock.patch.object(tc, "_quick_exit", return_value=False) as quick,
        mock.patch.dict(fmt._LAYOUTS, {}, clear=True),
        mock.patch.object(fmt, "_layout", return_value=()),
    ):
        full = _alerts(london, plan)
    assert fast == full
    assert fast  # alerts were compared
    if plan in ("cn-js-residential", "cn-fj-residential-monthly"):  # tiers: the rule took the long way
        assert quick.call_count > 0
        assert any('"money":{' in a for a in fast)  # priced alerts were compared
