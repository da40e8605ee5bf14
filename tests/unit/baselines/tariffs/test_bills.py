"""Hand-computed bills, to the cent, for every plan shape the catalogue ships.

Each expected figure is worked out in the comment next to it (prices from
baselines/tariffs/default_catalogue.json); rounding is half up per bill line.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from baselines.tariffs import (
    Bill,
    NoPriceError,
    bill,
    cost_to_date,
    day_uses,
    default_catalogue,
    load_catalogue,
    split_intervals,
)

CAT = default_catalogue()
D = Decimal


def lines(b: Bill) -> list[tuple[str, str, str, str, str]]:
    return [(ln.kind, ln.label, str(ln.quantity), str(ln.unit_price), str(ln.amount)) for ln in b.lines]


def test_uk_flat_with_standing_charge() -> None:
    uk = CAT.plan("uk-london-standard")
    # March 2013 (version of 2012-11-01: 0.143 GBP/kWh, 0.17 GBP/day): 31 days, 8.2 kWh a day + one 0-day
    days: list[float | None] = [8.2] * 30 + [None]
    b = bill(uk, dt.date(2013, 3, 1), days)
    # energy 246 kWh x 0.143 = 35.178 -> 35.18 ; standing 31 days x 0.17 = 5.27 (no data still pays it)
    assert lines(b) == [
        ("energy", "all", "246", "0.143", "35.18"),
        ("standing_charge", "standing", "31", "0.17", "5.27"),
    ]
    assert b.total == D("40.45") and b.kwh == D("246") and b.days == 31


def test_price_change_mid_cycle() -> None:
    uk = CAT.plan("uk-london-standard")
    # cycle 2013-11-15 .. 2013-12-15 (30 days), 10 kWh a day; new prices from 2013-12-01
    b = bill(uk, dt.date(2013, 11, 15), [10.0] * 30)
    # 16 days at 0.143 / 0.17: 160 kWh -> 22.88, 16 days -> 2.72
    # 14 days at 0.154 / 0.18: 140 kWh -> 21.56, 14 days -> 2.52
    assert lines(b) == [
        ("energy", "all", "160", "0.143", "22.88"),
        ("energy", "all", "140", "0.154", "21.56"),
        ("standing_charge", "standing", "16", "0.17", "2.72"),
        ("standing_charge", "standing", "14", "0.18", "2.52"),
    ]
    assert b.total == D("49.68")
    # like-for-like at the prices of 2013-12-20: 300 x 0.154 = 46.20 ; 30 x 0.18 = 5.40
    assert bill(uk, dt.date(2013, 11, 15), [10.0] * 30, prices_on=dt.date(2013, 12, 20)).total == D("51.60")


def test_monthly_tiers_and_bimonthly_scaling() -> None:
    fj = CAT.plan("cn-fj-residential-monthly")
    # 450 kWh in a monthly cycle (15 kWh a day for 30 days): energy 450 x 0.4983 = 224.235 -> 224.24
    # tier 2: 200 kWh (200-400) x 0.05 = 10.00 ; tier 3: 50 kWh x 0.30 = 15.00 -> 249.24
    b = bill(fj, dt.date(2024, 4, 1), [15.0] * 30)
    assert lines(b) == [
        ("energy", "all", "450", "0.4983", "224.24"),
        ("tier_surcharge", "tier 2", "200", "0.05", "10.00"),
        ("tier_surcharge", "tier 3", "50", "0.3", "15.00"),
    ]
    assert b.total == D("249.24")
    assert b.tier_wh == (200_000, 200_000, 50_000)
    # the same 450 kWh in a bi-monthly cycle: limits 400 / 800 -> only 50 kWh in tier 2 = 2.50
    b2 = bill(fj, dt.date(2024, 3, 1), [7.5] * 60, cycle_months=2)
    assert b2.total == D("226.74") and b2.tier_wh == (400_000, 50_000, 0)


def test_annual_tiers_across_a_tariff_year_boundary() -> None:
    js = CAT.plan("cn-js-residential")
    # cycle 2023-12-15 .. 2024-01-15 (31 days), 10 kWh a day; 4,700 kWh in tariff year 2023 before it
    # 2023-12-15..31 (17 days, 170 kWh): 4700 -> 4870:
    #   100 kWh in tier 2 (+0.05 = 5.00), 70 in tier 3 (+0.30 = 21.00)
    # 2024-01-01..14 (140 kWh): the tariff year restarts: tier 1
    # energy 310 x 0.5283 = 163.773 -> 163.77 ; total 189.77
    b = bill(js, dt.date(2023, 12, 15), [10.0] * 31, tier_kwh_before=4700)
    assert lines(b) == [
        ("energy", "all", "310", "0.5283", "163.77"),
        ("tier_surcharge", "tier 2", "100", "0.05", "5.00"),
        ("tier_surcharge", "tier 3", "70", "0.3", "21.00"),
    ]
    assert b.total == D("189.77")
    assert b.tier_period_wh_end == 140_000  # the new tariff year so far


def test_rounding_is_half_up_per_line() -> None:
    com = CAT.plan("cn-commercial-flat")
    # 0.25 kWh x 0.66 = 0.165 -> 0.17 half up (half-even would give 0.16)
    assert bill(com, dt.date(2024, 1, 1), [0.25]).total == D("0.17")
    # 1234.567 kWh x 0.66 = 814.81422 -> 814.81
    assert bill(com, dt.date(2024, 1, 1), [1234.567]).total == D("814.81")


def _half_hourly(
    day0: dt.date, days: int, peak_kwh: float, valley_kwh: float
) -> list[tuple[dt.datetime, float, int]]:
    """Half-hourly readings in Shanghai time: ``peak_kwh`` per slot 08:00-22:00, ``valley_kwh`` otherwise."""
    tz = dt.timezone(dt.timedelta(hours=8))
    out = []
    for d in range(days):
        midnight = dt.datetime.combine(day0 + dt.timedelta(days=d), dt.time(), tz)
        for slot in range(48):
            end = midnight + dt.timedelta(minutes=30 * (slot + 1))
            out.append((end, peak_kwh if 16 <= slot < 44 else valley_kwh, 1800))
    return out


def test_peak_valley_from_half_hourly_data() -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    by_day = split_intervals(zj, _half_hourly(start, 30, 0.1, 0.2), "Asia/Shanghai")
    assert by_day[start] == pytest.approx({"peak": 2.8, "valley": 4.0})  # 28 and 20 half hours
    b = bill(zj, start, day_uses(start, end, by_day))
    # peak 84 kWh x 0.568 = 47.712 -> 47.71 ; valley 120 kWh x 0.288 = 34.56 ; 204 kWh: tier 1 only
    assert lines(b) == [
        ("energy", "peak", "84", "0.568", "47.71"),
        ("energy", "valley", "120", "0.288", "34.56"),
    ]
    assert b.total == D("82.27") and b.estimated_split_wh == 0


def test_peak_valley_fallback_shares_for_daily_data() -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    # one measured day (6 peak, 4 valley) and one daily total of 10 kWh split 65/35
    b = bill(zj, dt.date(2024, 3, 1), [{"peak": 6.0, "valley": 4.0}, 10.0])
    # peak 6 + 6.5 = 12.5 x 0.568 = 7.10 ; valley 4 + 3.5 = 7.5 x 0.288 = 2.16
    assert lines(b) == [
        ("energy", "peak", "12.5", "0.568", "7.10"),
        ("energy", "valley", "7.5", "0.288", "2.16"),
    ]
    assert b.estimated_split_wh == 10_000


def test_tou_with_a_flat_fallback() -> None:
    cat = load_catalogue(
        """{"schema_version": 1, "plans": [{"id": "t", "name": {"zh-CN": "t", "en": "t"}, "currency": "CNY",
        "customer_class": "residential", "source": "test", "versions": [{"effective_from": "2020-01-01",
        "energy": {"kind": "tou", "fallback": {"kind": "flat", "price": "0.5"}, "periods": [
          {"name": "peak", "label": {"zh-CN": "峰", "en": "peak"}, "hours": [[8, 22]], "price": "0.6"},
          {"name": "valley", "label": {"zh-CN": "谷", "en": "valley"}, "hours": [[0, 8], [22, 24]],
           "price": "0.3"}
        ]}}]}]}""".encode()
    )
    b = bill(cat.plan("t"), dt.date(2024, 1, 1), [{"peak": 1.0, "valley": 1.0}, 3.0])
    # measured: 0.60 + 0.30 ; daily: 3 x 0.5 = 1.50
    assert lines(b) == [
        ("energy", "peak", "1", "0.6", "0.60"),
        ("energy", "valley", "1", "0.3", "0.30"),
        ("energy", "all", "3", "0.5", "1.50"),
    ]


def test_tou_with_annual_tiers() -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    # 2,750 kWh before; a measured day of 8 peak + 12 valley: 10 kWh stay in tier 1, 10 go to tier 2
    b = bill(zj, dt.date(2024, 5, 1), [{"peak": 8.0, "valley": 12.0}], tier_kwh_before=2750)
    # 8 x 0.568 = 4.544 -> 4.54 ; 12 x 0.288 = 3.456 -> 3.46 ; 10 x 0.05 = 0.50
    assert b.total == D("8.50")


def test_unknown_tou_period_and_bad_input_are_errors() -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    with pytest.raises(ValueError, match="unknown TOU period 'shoulder'"):
        bill(zj, dt.date(2024, 1, 1), [{"shoulder": 1.0}])
    with pytest.raises(ValueError, match="kWh must be a finite number >= 0"):
        bill(zj, dt.date(2024, 1, 1), [-1.0])
    with pytest.raises(ValueError, match="cycle_months"):
        bill(zj, dt.date(2024, 1, 1), [1.0], cycle_months=3)


def test_a_day_before_the_first_version_has_no_price() -> None:
    js = CAT.plan("cn-js-residential")
    with pytest.raises(NoPriceError) as e:
        cost_to_date(js, dt.date(2012, 6, 25), [1.0] * 10)
    assert e.value.plan_id == "cn-js-residential" and e.value.day == dt.date(2012, 6, 25)


def test_empty_bill_costs_nothing() -> None:
    b = bill(CAT.plan("uk-london-standard"), dt.date(2013, 1, 1), [])
    assert b.total == D("0.00") and b.lines == ()
