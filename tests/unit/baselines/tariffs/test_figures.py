"""Cycle figures: cost to date, projection, same period (prices then / today), tiers, the Money value."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from baselines.tariffs import (
    bill_figures,
    cost_to_date,
    default_catalogue,
    kwh_between,
    money_from_figures,
    next_tier,
    projected_cycle_cost,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tariff_year_kwh,
    tier_crossing_in_cycle,
    tier_kwh_before,
    tier_status,
)
from meterwatch.contracts import Money

CAT = default_catalogue()
JS = CAT.plan("cn-js-residential")
FJ = CAT.plan("cn-fj-residential-monthly")
UK = CAT.plan("uk-london-standard")
ZJ = CAT.plan("cn-zj-residential-tou")
D = Decimal


def test_cost_to_date_pays_the_standing_charge_of_the_days_so_far_only() -> None:
    b = cost_to_date(UK, dt.date(2013, 3, 1), [10.0] * 10)
    # 100 x 0.143 = 14.30 ; 10 x 0.17 = 1.70
    assert b.total == D("16.00") and b.days == 10


def test_projection_spreads_the_rest_over_the_remaining_days() -> None:
    # 10 days at 10 kWh, projection 400 kWh for a 31-day cycle: 300 over 21 days
    b = projected_cycle_cost(UK, dt.date(2013, 3, 1), dt.date(2013, 4, 1), [10.0] * 10, 400.0)
    # 400 x 0.143 = 57.20 ; 31 x 0.17 = 5.27
    assert b.total == D("62.47") and b.kwh == D("400") and b.days == 31
    # a projection below the consumption so far adds nothing more
    low = projected_cycle_cost(UK, dt.date(2013, 3, 1), dt.date(2013, 4, 1), [10.0] * 10, 50.0)
    assert low.kwh == D("100") and low.total == D("19.57")  # 14.30 + 5.27


def test_projection_crosses_a_price_change() -> None:
    # cycle 2013-11-15..12-15, nothing yet, projected 300 kWh: as the hand bill of test_bills (49.68)
    assert projected_cycle_cost(UK, dt.date(2013, 11, 15), dt.date(2013, 12, 15), [], 300.0).total == D(
        "49.68"
    )


def test_projected_tou_days_take_the_measured_shares() -> None:
    # 1 measured day 2 peak / 8 valley; the 9 remaining days get 20 % / 80 % too (not the 65/35 fallback)
    b = projected_cycle_cost(
        ZJ, dt.date(2024, 3, 1), dt.date(2024, 3, 11), [{"peak": 2.0, "valley": 8.0}], 100.0
    )
    # peak 20 x 0.568 = 11.36 ; valley 80 x 0.288 = 23.04
    assert b.total == D("34.40") and b.estimated_split_wh == 0


def test_same_period_then_and_at_today_prices() -> None:
    s, e = dt.date(2012, 11, 15), dt.date(2012, 12, 15)  # 30 days, version of 2012-11-01
    then = same_period_cost_then(UK, s, e, 300.0)
    now = same_period_cost_at_today_prices(UK, s, e, 300.0, dt.date(2013, 12, 20))
    assert then.total == D("48.00")  # 300 x 0.143 = 42.90 ; 30 x 0.17 = 5.10
    assert now.total == D("51.60")  # 300 x 0.154 = 46.20 ; 30 x 0.18 = 5.40


def test_same_period_under_annual_tiers_keeps_the_tier_position_of_then() -> None:
    # last year's July: 3,000 kWh already that tariff year; 310 kWh in July
    b = same_period_cost_then(JS, dt.date(2023, 7, 1), dt.date(2023, 8, 1), 310.0, tier_kwh_before=3000.0)
    # 310 x 0.5283 = 163.773 -> 163.77 ; all in tier 2: 310 x 0.05 = 15.50
    assert b.total == D("179.27")


def test_tariff_year_consumption_from_closed_cycles_prorates_the_boundary_cycle() -> None:
    cycles = [
        (dt.date(2023, 12, 15), dt.date(2024, 1, 15), 310.0),  # 14 of its 31 days are in 2024: 140 kWh
        (dt.date(2024, 1, 15), dt.date(2024, 2, 15), 200.0),
        (dt.date(2023, 11, 15), dt.date(2023, 12, 15), 999.0),  # last tariff year: not counted
    ]
    assert tier_kwh_before(JS, dt.date(2024, 2, 15), cycles) == 340.0
    assert tier_kwh_before(FJ, dt.date(2024, 2, 15), cycles) == 0.0  # monthly tiers restart every cycle
    assert (
        kwh_between(dt.date(2024, 2, 15), dt.date(2024, 2, 20), [], dt.date(2024, 2, 15), [1.0, 2.0, None])
        == 3.0
    )


def test_tier_status_and_next_tier_for_monthly_tiers() -> None:
    s, e = dt.date(2024, 4, 1), dt.date(2024, 5, 1)
    st = tier_status(FJ, dt.date(2024, 4, 10), 180.0, period_start=s, period_end=e)
    assert st is not None and (st.tier, st.next_at_kwh, st.price_step, st.period) == (
        1,
        D("200"),
        D("0.05"),
        "cycle",
    )
    at_limit = tier_status(FJ, dt.date(2024, 4, 10), 200.0, period_start=s, period_end=e)
    assert at_limit is not None and at_limit.tier == 1
    above = tier_status(FJ, dt.date(2024, 4, 10), 200.001, period_start=s, period_end=e)
    assert above is not None and above.tier == 2
    # 20 kWh to go at 3 kWh/day: 04-16 reaches 198, 04-17 passes 200
    nt = next_tier(FJ, dt.date(2024, 4, 10), 180.0, 3.0, period_start=s, period_end=e)
    assert nt is not None and (nt.tier, nt.kwh_to_go, nt.on) == (2, D("20"), dt.date(2024, 4, 17))
    # too slow to reach it in this cycle; no pace at all
    slow = next_tier(FJ, dt.date(2024, 4, 10), 180.0, 0.5, period_start=s, period_end=e)
    assert slow is not None and slow.on is None
    still = next_tier(FJ, dt.date(2024, 4, 10), 180.0, 0.0, period_start=s, period_end=e)
    assert still is not None and still.on is None
    # top tier: nothing next; bi-monthly limits doubled
    assert next_tier(FJ, dt.date(2024, 4, 10), 500.0, 3.0, period_start=s, period_end=e) is None
    bimonthly = tier_status(FJ, dt.date(2024, 4, 10), 300.0, period_start=s, period_end=e, cycle_months=2)
    assert bimonthly is not None and bimonthly.tier == 1
    assert tier_status(UK, dt.date(2013, 4, 10), 300.0) is None


def test_next_tier_stops_at_the_tariff_year_end() -> None:
    # 2,700 kWh on 2024-12-20 at 2 kWh a day: 2,760 is passed in 2025 -- after the year restarts
    slow = next_tier(JS, dt.date(2024, 12, 20), 2700.0, 2.0)
    assert slow is not None and slow.on is None
    fast = next_tier(JS, dt.date(2024, 12, 20), 2700.0, 10.0)
    assert fast is not None and fast.on == dt.date(2024, 12, 27)


def test_tier_crossing_in_cycle() -> None:
    s, e = dt.date(2024, 4, 1), dt.date(2024, 5, 1)
    # 10 days at 15 kWh (150), projected 450: 300 over 20 days = 15/day; 200 is passed on day 14 (04-14)
    x = tier_crossing_in_cycle(FJ, s, e, [15.0] * 10, 450.0)
    assert x is not None
    assert (x.from_tier, x.to_tier, x.at_kwh, x.on, x.price_step) == (
        1,
        2,
        D("200"),
        dt.date(2024, 4, 14),
        D("0.05"),
    )
    assert tier_crossing_in_cycle(FJ, s, e, [5.0] * 10, 150.0) is None  # stays in tier 1
    assert tier_crossing_in_cycle(UK, s, e, [5.0] * 10, 150.0) is None  # no tiers
    # already in tier 2: the next crossing is into tier 3 at 400
    y = tier_crossing_in_cycle(FJ, s, e, [25.0] * 10, 750.0)
    assert y is not None and (y.from_tier, y.to_tier, y.at_kwh) == (2, 3, D("400"))


def test_a_day_that_jumps_two_tiers_reports_the_highest() -> None:
    x = tier_crossing_in_cycle(FJ, dt.date(2024, 4, 1), dt.date(2024, 4, 3), [10.0], 600.0)
    assert x is not None and (x.from_tier, x.to_tier, x.at_kwh, x.price_step) == (1, 3, D("400"), D("0.3"))


def test_bill_figures_and_money_for_an_annual_tier_customer() -> None:
    cycles = [
        (dt.date(2024, 1, 1), dt.date(2024, 7, 1), 2600.0),
        (dt.date(2023, 1, 1), dt.date(2023, 7, 1), 1500.0),
        (dt.date(2023, 7, 1), dt.date(2023, 8, 1), 93.0),
    ]
    f = bill_figures(
        JS,
        cycle_start=dt.date(2024, 7, 1),
        cycle_end=dt.date(2024, 8, 1),
        days_so_far=[10.0] * 10,
        projected_kwh=310.0,
        closed_cycles=cycles,
        same_period=(dt.date(2023, 7, 1), dt.date(2023, 8, 1), 93.0),
    )
    assert f.as_of == dt.date(2024, 7, 10)
    assert f.to_date.total == D("52.83")  # 100 x 0.5283
    assert f.projected is not None and f.projected.total == D("171.27")  # 163.77 + 150 x 0.05
    assert f.same_period_then is not None and f.same_period_then.total == D(
        "49.13"
    )  # 93 x 0.5283 (1,500 before)
    assert f.tier is not None and (f.tier.tier, f.tier.period_kwh) == (1, D("2700"))
    assert f.next_tier is not None and f.next_tier.on == dt.date(2024, 7, 17)
    assert f.crossing is not None and f.crossing.on == dt.date(2024, 7, 17)
    m = money_from_figures(f)
    assert m.model_dump(mode="json") == {
        "currency": "CNY",
        "to_date": 52.83,
        "projected": 171.27,
        "same_period": 49.13,
        "extra_vs_same_period": 122.14,
        "same_period_at_current_prices": 49.13,
        "tier": {
            "index": 1,
            "count": 3,
            "period": "year",
            "period_kwh": 2700.0,
            "next_at_kwh": 2760.0,
            "next_on": "2024-07-17",
            "price_step": 0.05,
        },
    }
    assert Money.model_validate(json.loads(m.model_dump_json())) == m


def test_bill_figures_without_projection_or_same_period_and_before_the_plan_existed() -> None:
    f = bill_figures(
        UK,
        cycle_start=dt.date(2012, 10, 1),
        cycle_end=dt.date(2012, 11, 1),
        days_so_far=[5.0] * 4,
        same_period=(
            dt.date(2011, 9, 1),
            dt.date(2011, 10, 1),
            150.0,
        ),  # before the first version (2011-10-01)
    )
    assert f.projected is None and f.crossing is None and f.tier is None and f.next_tier is None
    assert f.same_period_then is None  # no price then: no "as billed" figure
    assert f.same_period_today_prices is not None and f.same_period_today_prices.total == D(
        "25.05"
    )  # 20.25 + 4.80
    m = money_from_figures(f)
    assert (m.to_date, m.projected, m.same_period, m.extra_vs_same_period) == (D("3.34"), None, None, None)
    assert f.pace_kwh_per_day == 5.0


def test_tariff_year_kwh_counts_only_the_open_days_of_the_new_year() -> None:
    # open cycle from 2023-12-15, 20 days so far (to 2024-01-03): 3 of them are in tariff year 2024
    days = [float(i) for i in range(1, 21)]  # 1..20 kWh; 2024-01-01..03 are 18, 19, 20
    start, kwh = tariff_year_kwh(JS, dt.date(2024, 1, 3), [], dt.date(2023, 12, 15), days)
    assert (start, kwh) == (dt.date(2024, 1, 1), 57.0)
    start, kwh = tariff_year_kwh(JS, dt.date(2023, 12, 31), [], dt.date(2023, 12, 15), days)
    assert (start, kwh) == (dt.date(2023, 1, 1), 153.0)  # 1 + ... + 17
