"""The engine on real London households (the sample in data/sample, kept in the repository)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules import RulesConfig
from meterwatch.cli.feed import iter_customers, run_table

from .helpers import sample_data

HOUSEHOLDS = ["MAC000002", "MAC000246", "MAC001074", "MAC003223", "MAC004387", "MAC005492"]


@pytest.fixture(scope="module")
def london() -> pa.Table:
    t = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    return t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(HOUSEHOLDS)))


def test_cycle_totals_match_the_calendar_months(london: pa.Table) -> None:
    res = run_table(london, timezone="Europe/London")
    assert res.customers == len(HOUSEHOLDS) and res.rejected == 0 and res.duplicates == 0
    # the engine's monthly cycles (read day 1) equal numpy's calendar-month sums of the same rows
    ids = london.column("LCLid").cast(pa.string()).to_pylist()
    days = london.column("day").to_pylist()
    kwh = london.column("energy_sum").to_pylist()
    expected: dict[tuple[str, dt.date], float] = defaultdict(float)
    for i, d, v in zip(ids, days, kwh, strict=True):
        if v is not None and v == v:
            expected[(i, d.replace(day=1))] += v
    eng = Engine()
    for cid, series in iter_customers(london):
        p = Profile.new(cid)
        cust = CustomerConfig(cid, timezone="Europe/London")
        for r in series.readings():
            if r.value >= 0:
                eng.process_inplace(p, r, cust)
        got = {dt.date.fromordinal(c.start): c.kwh for c in p.closed_cycles}
        for i, c in enumerate(p.open_cycles):
            got[dt.date.fromordinal(c.start)] = cycle_to_date(p, i)
        for month, total in got.items():
            assert total == pytest.approx(expected.get((cid, month), 0.0), abs=0.01), (cid, month)
        # and the profile survives JSON
        assert Profile.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_injected_surge_is_found_and_untouched_household_is_quiet(london: pa.Table) -> None:
    cid = "MAC000246"
    one = london.filter(pc.equal(london.column("LCLid").cast(pa.string()), cid))
    base = run_table(one)
    onset = dt.date(2013, 5, 12)
    days = one.column("day").to_pylist()
    kwh = np.array(one.column("energy_sum").to_pylist(), dtype=float)
    mask = np.array([onset <= d < onset + dt.timedelta(days=20) for d in days])
    assert mask.sum() == 20
    kwh[mask] *= 4.0
    surged = one.set_column(one.column_names.index("energy_sum"), "energy_sum", pa.array(kwh))
    res = run_table(surged)
    before = {a.alert_id for a in base.alerts}
    new = [a for a in res.alerts if a.alert_id not in before and a.rule == "sudden_increase"]
    assert len(new) == 1
    fired_on = new[0].triggered_by.date() - dt.timedelta(days=1)
    assert onset <= fired_on <= onset + dt.timedelta(days=7)
    si = RulesConfig().default.sudden_increase
    assert new[0].customer_facing and new[0].observed.ratio is not None
    assert new[0].observed.ratio >= si.factor * si.tolerance
    # the untouched household got no sudden_increase in that cycle
    assert not [
        a for a in base.alerts if a.rule == "sudden_increase" and a.cycle.start == dt.date(2013, 5, 1)
    ]


def test_real_households_are_moderate(london: pa.Table) -> None:
    res = run_table(london)
    cf = [a for a in res.alerts if a.customer_facing]
    # six real households over ~2 years: customer-facing alerts stay rare (a handful at most)
    assert len(cf) <= max(2, res.customer_cycles // 20), [(a.customer_id, a.rule, a.triggered_by) for a in cf]
    assert res.profiles_bytes / res.customers < 2500


def test_half_hourly_stream_gives_the_daily_totals_of_the_daily_file() -> None:
    """The same household in both files: the engine's days from half-hours = the daily file."""
    cid = "MAC000002"
    hh = pq.read_table(sample_data() / "lcl_london_halfhourly_2013" / "lcl_hh_2013.parquet")
    hh = hh.filter(pc.equal(hh.column("LCLid").cast(pa.string()), cid))
    daily = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    daily = daily.filter(pc.equal(daily.column("LCLid").cast(pa.string()), cid))
    want = {
        d: v
        for d, v, n in zip(
            daily.column("day").to_pylist(),
            daily.column("energy_sum").to_pylist(),
            daily.column("energy_count").to_pylist(),
            strict=True,
        )
        if n == 48 and dt.date(2013, 1, 1) <= d <= dt.date(2013, 2, 28)  # winter: London time = UTC
    }
    assert len(want) > 40
    eng = Engine()
    cust = CustomerConfig(cid, timezone="Europe/London")
    p = Profile.new(cid)
    for start, kwh in zip(hh.column("tstp").to_pylist(), hh.column("kwh").to_pylist(), strict=True):
        if kwh is None or kwh != kwh or start.month > 3:
            continue
        # tstp is the start of the half-hour; the contract's ts is its end (with an offset)
        end = start.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=30)
        res = eng.process_inplace(p, Reading("interval", end.timestamp(), kwh, interval_s=1800), cust)
        assert res.rejected is None
    assert p.final_start is not None
    got = {dt.date.fromordinal(p.final_start + i): v for i, v in enumerate(p.final_days) if v is not None}
    checked = [d for d in want if d in got]
    assert len(checked) >= 20
    for d in checked:
        assert got[d] == pytest.approx(want[d], abs=0.002), d
    assert p.night_share is not None and 0.05 < p.night_share < 0.6
