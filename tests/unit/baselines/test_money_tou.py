"""Time of use from interval readings through the Engine (docs/money.md, "Time of use on interval data").

Zhejiang ``cn-zj-residential-tou``: peak 08:00-22:00 at 0.568 CNY/kWh, valley 22:00-08:00 at
0.288; annual tiers from 2,760 kWh (not reached here); days without interval data split
65 % / 35 %. The customer is in Asia/Shanghai (UTC+8): a local day runs 16:00Z to 16:00Z, so
every day's readings straddle UTC midnight, which is the local 08:00 valley/peak boundary (a
split by UTC hours would be wrong by 8 hours). Each bill line rounds half up to 0.01, the total
is the sum of the lines; the figures are computed by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.billing import cycle_days, tou_cycle_days, tou_cycle_wh
from baselines.customer import CustomerConfig
from baselines.cycles import zone
from baselines.engine import Engine
from baselines.profile import OpenCycle, OpenDay, Profile, chain_of
from baselines.readings import Reading
from baselines.tariffs import PartMeasured, bill, bill_figures, default_catalogue
from baselines.tariffs.compiled import kwh_to_wh
from baselines.tou_days import day_period_wh

from .helpers import feed_daily, half_hourly

ZJ = "cn-zj-residential-tou"
TZ = "Asia/Shanghai"
D = dt.date
# one local day, half-hourly: 00:00-08:00 (16 slots) 0.25 kWh, 08:00-22:00 (28) 0.5, 22:00-24:00 (4) 0.25
DAY = [0.25] * 16 + [0.5] * 28 + [0.25] * 4  # peak 14 kWh, valley 5 kWh, 19 kWh
CUST = CustomerConfig("t1", timezone=TZ, tariff_plan=ZJ)


def _readings(days: range, skip: int = 4, partial: int = 3) -> list[Reading]:
    """March 2024: every day of ``days`` but ``skip`` (no data); ``partial`` misses 00:00-04:00."""
    out: list[Reading] = []
    for d in days:
        if d == skip:
            continue
        rs = half_hourly(D(2024, 3, d), DAY, TZ)
        out += rs[8:] if d == partial else rs
    return out


def _run(eng: Engine, readings: list[Reading], p: Profile | None = None) -> Profile:
    p = p if p is not None else Profile.new("t1")
    for r in readings:
        res = eng.process_inplace(p, r, CUST)
        assert res.rejected is None, res.rejected
    return p


def _money(eng: Engine, p: Profile, day: int) -> tuple[float | None, Decimal, Decimal | None]:
    snap = eng.snapshot(p, CUST, None, dt.datetime(2024, 3, day + 1, tzinfo=dt.UTC))
    assert snap.money is not None and snap.money.as_of == D(2024, 3, day)
    return snap.cycle.projected_kwh, snap.money.to_date, snap.money.projected


def test_a_half_hourly_customer_is_priced_from_the_measured_periods_to_the_cent() -> None:
    eng = Engine()
    p = _run(eng, _readings(range(1, 10)))
    # as of 9 March: days 1, 2, 5-9 whole (14 + 5 kWh), day 3 partial (00:00-04:00 missing:
    # 14 + 3 kWh), day 4 without data. The day's kWh are the kWh measured, all at their periods:
    # peak 8 x 14 = 112 kWh x 0.568 = 63.616 -> 63.62; valley 7 x 5 + 3 = 38 x 0.288 = 10.944 -> 10.94
    proj_kwh, to_date, projected = _money(eng, p, 9)
    assert to_date == Decimal("74.56")
    # projection: 150 kWh so far + 22 days x 19 kWh = 568 kWh; the rest (19,000 Wh a day) at the
    # shares measured so far: peak 19000 x 112/150 -> 14,186 Wh, valley 4,814 Wh a day;
    # peak 112 + 22 x 14.186 = 424.092 kWh x 0.568 = 240.884 -> 240.88;
    # valley 38 + 22 x 4.814 = 143.908 kWh x 0.288 = 41.4455 -> 41.45
    assert proj_kwh == 568.0 and projected == Decimal("282.33")
    # with the fallback split (what the engine did before): 150 x (0.65 x 0.568 + 0.35 x 0.288)
    assert to_date != Decimal("70.50")

    p = _run(eng, _readings(range(10, 13)), p)
    # as of 12 March: days 1-3 left the late window (kept per period in the profile), day 3 is
    # final and partial (its 17 kWh spread by the engine over days 3 and 4: 8.5 kWh each, at the
    # periods measured on day 3: 7 + 1.5 kWh each). peak 11 x 14 = 154 kWh -> 87.472 -> 87.47;
    # valley 10 x 5 + 3 = 53 kWh -> 15.264 -> 15.26
    assert sorted(p.tou_days) == [D(2024, 3, d).toordinal() for d in (1, 2, 3)]
    assert p.tou_days[D(2024, 3, 3).toordinal()] == (14000, 3000)
    uses = tou_cycle_days(p, 0, D(2024, 3, 12).toordinal(), eng.tariffs.plan(ZJ), CUST)  # type: ignore[arg-type]
    assert uses[2] == uses[3] == {"peak": 7.0, "valley": 1.5}
    proj_kwh, to_date, projected = _money(eng, p, 12)
    assert to_date == Decimal("102.73")
    # 207 + 19 x 19 = 568 kWh; rest 19,000 Wh a day: peak 19000 x 154/207 -> 14,135 Wh, valley 4,865;
    # peak 154 + 19 x 14.135 = 422.565 x 0.568 = 240.0169 -> 240.02; valley 53 + 19 x 4.865 =
    # 145.435 x 0.288 = 41.8853 -> 41.89
    assert proj_kwh == 568.0 and projected == Decimal("281.91")


def test_the_kept_days_are_dropped_when_their_cycle_closes() -> None:
    eng = Engine()
    p = _run(eng, _readings(range(1, 32)))
    assert min(p.tou_days) == D(2024, 3, 1).toordinal()
    april = [r for d in range(1, 12) for r in half_hourly(D(2024, 4, d), DAY, TZ)]
    p = _run(eng, april, p)
    assert p.open_cycles[0].start == D(2024, 4, 1).toordinal()
    assert sorted(p.tou_days) == [D(2024, 4, d).toordinal() for d in (1, 2, 3)]
    assert len(json.dumps(p.to_dict()["tu"], separators=(",", ":"))) < 60


def test_a_daily_data_customer_on_the_same_plan_keeps_the_fallback_figures() -> None:
    eng = Engine()
    p, _ = feed_daily(eng, CUST, D(2024, 3, 1), [19.0] * 12)
    # 228 kWh: peak 65 % = 148.2 kWh x 0.568 = 84.1776 -> 84.18; valley 79.8 kWh x 0.288 = 22.9824 -> 22.98
    snap = eng.snapshot(p, CUST, None, dt.datetime(2024, 3, 13, tzinfo=dt.UTC))
    assert snap.money is not None and snap.money.to_date == Decimal("107.16")
    assert p.tou_days == {} and "tu" not in p.to_dict()


def test_a_profile_stored_before_tou_days_existed_loads_and_prices_those_days_with_the_fallback() -> None:
    eng = Engine()
    p = _run(eng, _readings(range(1, 12)))
    old = {k: v for k, v in p.to_dict().items() if k != "tu"}
    old["v"] = 1  # as the worker stored it before this schema
    q = _run(eng, _readings(range(12, 13)), Profile.from_dict(json.loads(json.dumps(old))))
    # days 1-2 (19 kWh) and 3 (17 kWh, final partial) were final before: fallback 65/35;
    # peak 2 x 12.35 + 11.05 + 8 x 14 = 147.75 kWh x 0.568 = 83.922 -> 83.92;
    # valley 2 x 6.65 + 5.95 + 8 x 5 = 59.25 kWh x 0.288 = 17.064 -> 17.06
    assert _money(eng, q, 12)[1] == Decimal("100.98")
    assert q.to_dict()["v"] == 2 and q.tou_days == {}


def test_the_partial_days_measured_share_goes_to_the_days_the_engine_spread_it_over() -> None:
    zj = default_catalogue().plan(ZJ)
    s = D(2024, 3, 1).toordinal()
    p = Profile.new("c")
    # the ring holds day 1; day 2 partial final (4 kWh measured: 3 peak, 1 valley) and day 3 a
    # partial daily total (4 kWh, no periods): 8 kWh spread over days 2 and 3
    p.open_cycles.append(OpenCycle(s, s + 31, 18.0, 1.0))
    p.final_start, p.final_days, p.tou_days = s, [10.0, None, None], {s: (7000, 3000), s + 1: (3000, 1000)}
    uses = tou_cycle_days(p, 0, s + 2, zj, CUST)
    half = PartMeasured(4.0, {"peak": 1.5, "valley": 0.5})  # half of each day's kWh measured
    assert uses == [{"peak": 7.0, "valley": 3.0}, half, half]
    assert cycle_days(p, 0, s + 2) == [10.0, 4.0, 4.0]
    # peak 7 + 2 x (1.5 + 0.65 x 2) = 12.6 kWh x 0.568 = 7.1568 -> 7.16;
    # valley 3 + 2 x (0.5 + 0.35 x 2) = 5.4 kWh x 0.288 = 1.5552 -> 1.56
    b = bill(zj, s, uses)
    assert b.total == Decimal("8.72") and b.estimated_split_wh == 4000


# ---------------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 3000).map(lambda w: w / 1000), min_size=1, max_size=50),
    gran=st.sampled_from([900, 1800, 3600, 5400, 7200]),
    tz=st.sampled_from(["Asia/Shanghai", "Europe/London", "UTC"]),
    day=st.sampled_from([D(2024, 3, 31), D(2024, 10, 27), D(2024, 6, 5)]),  # London DST days
    seed=st.integers(0, 2**32 - 1),
)
def test_the_period_wh_of_a_day_sum_to_the_days_wh(
    values: list[float], gran: int, tz: str, day: D, seed: int
) -> None:
    cp = default_catalogue().plan(ZJ).compiled
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(1, 86400 // gran + 2), min(len(values), 86400 // gran + 1)))
    mask = sum(1 << s for s in slots)
    vals = values[: len(slots)]
    kwh = sum(vals)
    acc = OpenDay(kwh, gran * len(slots), mask, gran, None, 0.0, chain_of(mask, vals))
    parts = day_period_wh(acc, day.toordinal(), zone(tz), cp)
    assert parts is not None and sum(parts) == kwh_to_wh(kwh) and min(parts) >= 0
    b = bill(default_catalogue().plan(ZJ), day, [{"peak": parts[0] / 1000, "valley": parts[1] / 1000}])
    energy = [ln for ln in b.lines if ln.kind == "energy"]
    # the TOU lines add up to the energy charge of the day's kWh at their periods' prices
    assert sum(ln.quantity for ln in energy) == b.kwh
    assert sum(ln.exact_amount for ln in energy) == Decimal(parts[0] * 568 + parts[1] * 288) / 10**6


def test_a_slot_across_a_period_boundary_is_split_pro_rata() -> None:
    cp = default_catalogue().plan(ZJ).compiled
    # 90-minute slots: slot 15 is 21:00-22:30 local, 2/3 peak and 1/3 valley
    acc = OpenDay(0.9, 5400.0, 1 << 15, 5400, None, 0.0, chain_of(1 << 15, [0.9]))
    assert day_period_wh(acc, D(2024, 3, 5).toordinal(), zone(TZ), cp) == (600, 300)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_late_and_repeated_readings_leave_the_same_split_and_money(seed: int) -> None:
    eng = Engine()
    ordered = _readings(range(1, 12))
    want = _run(eng, ordered)
    rng = random.Random(seed)
    # the same readings, each day's shuffled, some days' readings late by up to 3 days, some twice
    by_day: dict[int, list[Reading]] = {}
    for r in ordered:
        by_day.setdefault(int((r.ts - 1800 - 16 * 3600) // 86400), []).append(r)
    mixed: list[Reading] = []
    deferred: dict[int, list[Reading]] = {}
    for i, k in enumerate(sorted(by_day)):
        rs = list(by_day[k])
        rng.shuffle(rs)
        late = [r for r in rs if rng.random() < 0.2]
        mixed += [r for r in rs if r not in late] + rng.sample(rs, 3) + deferred.pop(i, [])
        deferred[i + 2] = late  # two data days later (at most 3 calendar days: inside the window)
    mixed += [r for i in sorted(deferred) for r in deferred[i]]
    p = Profile.new("t1")
    for r in mixed:
        res = eng.process_inplace(p, r, CUST)
        assert res.rejected is None, res.rejected
    assert p.tou_days == want.tou_days
    assert {d: a.kwh for d, a in p.open_days.items()} == {d: a.kwh for d, a in want.open_days.items()}
    assert _money(eng, p, 11) == _money(eng, want, 11)
    # every day's measured Wh add up to at most its Wh (exactly, for a day measured whole)
    wh, split = tou_cycle_wh(p, 0, D(2024, 3, 11).toordinal(), eng.tariffs.plan(ZJ), CUST)  # type: ignore[arg-type]
    assert wh == [round(x * 1000) for x in cycle_days(p, 0, D(2024, 3, 11).toordinal())]
    assert all(s is None or sum(s.values()) == w for w, s in zip(wh, split, strict=True))


def test_the_day_uses_and_the_whole_wh_form_give_the_same_bill() -> None:
    eng = Engine()
    p = _run(eng, _readings(range(1, 13)))
    zj = eng.tariffs.plan(ZJ)
    assert zj is not None
    s, through = D(2024, 3, 1).toordinal(), D(2024, 3, 12).toordinal()
    wh, split = tou_cycle_wh(p, 0, through, zj, CUST)
    a = bill_figures(zj, cycle_start=s, cycle_end=s + 31, days_wh=(wh, split), projected_kwh=568.0)
    b = bill_figures(
        zj,
        cycle_start=s,
        cycle_end=s + 31,
        days_so_far=tou_cycle_days(p, 0, through, zj, CUST),
        projected_kwh=568.0,
    )
    assert a == b and a.to_date.total == Decimal("102.73") and a.to_date.estimated_split_wh == 0


def test_a_register_read_that_moves_the_day_on_keeps_the_interval_days_split() -> None:
    # interval days 1-3 March, then a meter's register reads on 12 and 13 March: the reads move the
    # newest day on, which finalises days 1-3; they must keep their measured split (14,000 Wh peak,
    # 5,000 valley), as when an interval reading moves the day on
    eng = Engine()
    p = _run(eng, _readings(range(1, 4), skip=0, partial=0))
    for day, kwh in ((12, 1000.0), (13, 1019.0)):
        ts = dt.datetime(2024, 3, day, 12, tzinfo=zone(TZ)).timestamp()
        res = eng.process_inplace(p, Reading("register", ts, kwh), CUST)
        assert res.rejected is None, res.rejected
    assert {d: p.tou_days.get(D(2024, 3, d).toordinal()) for d in (1, 2, 3)} == {
        1: (14000, 5000),
        2: (14000, 5000),
        3: (14000, 5000),
    }
