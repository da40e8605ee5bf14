from __future__ import annotations

import datetime as dt
import json

import pytest

from baselines.baseline_stats import day_values
from baselines.customer import CustomerConfig
from baselines.engine import Engine, alert_id
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules import RulesConfig
from meterwatch.contracts import Alert, CustomerRecord, HistoryRow, MeterReading, SegmentRef

from .helpers import cycle_totals, feed, feed_daily, half_hourly

UTC = "UTC"
D0 = dt.date(2023, 1, 1)


def literal_rules() -> RulesConfig:
    return RulesConfig.model_validate({"default": {"same_period_reached": {"max_elapsed_fraction": 1.0}}})


def days(n: int, v: float) -> list[float]:
    return [v] * n


def test_same_period_reached_fires_once_with_numbers_and_texts() -> None:
    eng = Engine(literal_rules())
    cust = CustomerConfig("c1", timezone=UTC, manager_id="m7", meter_ids=("mtr1",))
    # one year at 5 kWh/day, then January 2024 at 10 kWh/day: reached on day 16 (16*10 >= 31*5)
    p, alerts = feed_daily(eng, cust, D0, days(365, 5.0))
    assert [a.rule for a in alerts] == []
    p, alerts = feed_daily(eng, cust, dt.date(2024, 1, 1), days(31, 10.0), p)
    sp = [a for a in alerts if a.rule == "same_period_reached"]
    assert len(sp) == 1
    a = sp[0]
    assert a.cycle.start == dt.date(2024, 1, 1) and a.cycle.end == dt.date(2024, 1, 31)
    assert a.triggered_by.date() == dt.date(2024, 1, 17)  # the row for 16 January ends at midnight
    assert a.observed.same_period_kwh == pytest.approx(155.0)
    assert a.observed.cycle_to_date_kwh == pytest.approx(160.0)
    assert a.alert_id == alert_id("c1", "same_period_reached", dt.date(2024, 1, 1))
    assert a.manager_id == "m7" and a.meter_ids == ["mtr1"] and a.customer_facing is False
    assert "155.0" in a.explanation.en and "155.0" in a.explanation.zh_CN
    body = json.loads(a.to_json())
    assert body["explanation"]["zh-CN"] and body["schema"] == 1
    Alert.model_validate(body)


def test_same_period_needs_history_and_coverage() -> None:
    eng = Engine(literal_rules())
    cust = CustomerConfig("c1", timezone=UTC)
    p, alerts = feed_daily(eng, cust, D0, days(40, 5.0))
    assert not [a for a in alerts if a.rule == "same_period_reached"]
    assert p.reasons["same_period_reached"][0] == "baselines.sufficiency.no_same_period"
    # a same-period cycle with only half its days covered: the rule refuses to judge
    p = Profile.new("c2")
    cust2 = CustomerConfig("c2", timezone=UTC)
    p, _ = feed_daily(eng, cust2, dt.date(2023, 1, 1), days(15, 5.0))
    p, _ = feed_daily(eng, cust2, dt.date(2023, 12, 1), days(31, 5.0), p)
    p, alerts = feed_daily(eng, cust2, dt.date(2024, 1, 1), days(20, 30.0), p)
    assert not [a for a in alerts if a.rule == "same_period_reached"]
    code, numbers = p.reasons["same_period_reached"]
    assert code == "baselines.sufficiency.same_period_coverage"
    assert numbers["coverage"] == pytest.approx(15 / 31, abs=1e-3)
    snap = eng.snapshot(p, cust2, None, dt.datetime(2024, 1, 21, tzinfo=dt.UTC))
    assert "baselines.sufficiency.same_period_coverage" in [r.code for r in snap.reasons]


def test_same_period_moderated_default_ignores_end_of_cycle_crossing() -> None:
    eng = Engine()  # default: only when reached with >= 15 % of the cycle to go
    cust = CustomerConfig("c1", timezone=UTC)
    p, _ = feed_daily(eng, cust, D0, days(365, 5.0))
    p, alerts = feed_daily(eng, cust, dt.date(2024, 1, 1), days(31, 5.3), p)  # reached on day 30
    assert not [a for a in alerts if a.rule == "same_period_reached"]


def test_sudden_increase_fires_on_jump_not_on_single_spike() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    vals = [6.0 + (i % 5) * 0.5 for i in range(60)]
    p, alerts = feed_daily(eng, cust, D0, vals)
    assert alerts == []
    assert p.reasons.get("sudden_increase") is None
    _p1, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=60), [40.0, 7.0, 7.0, 6.5], p)
    assert alerts == []  # a party
    p2, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=60), [28.0, 29.0, 30.0, 28.0], p)
    si = [a for a in alerts if a.rule == "sudden_increase"]
    assert len(si) == 1
    a = si[0]
    assert a.customer_facing is True
    # 4 of the last 5 days must be high: the fourth surge day (its row ends at midnight) fires it
    assert a.triggered_by.date() == (D0 + dt.timedelta(days=64))
    assert a.observed.ratio is not None and 3.5 < a.observed.ratio < 5.5
    assert a.observed.baseline_daily_kwh == pytest.approx(7.0, abs=0.6)
    # at most once per cycle
    _, more = feed_daily(eng, cust, D0 + dt.timedelta(days=64), [30.0] * 5, p2)
    assert not [x for x in more if x.rule == "sudden_increase"]


def test_sudden_increase_refuses_without_baseline() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    p, alerts = feed_daily(eng, cust, D0, [5.0] * 10 + [50.0] * 5)
    assert not alerts
    code, numbers = p.reasons["sudden_increase"]
    assert code == "baselines.sufficiency.too_few_days" and numbers["needed"] == 14


def test_baseline_is_not_dragged_up_by_the_surge() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    p, _ = feed_daily(eng, cust, D0, [5.0 + (i % 3) * 0.3 for i in range(60)])
    before = p.baseline_median
    p, _ = feed_daily(eng, cust, D0 + dt.timedelta(days=60), [25.0] * 18, p)
    assert p.baseline_median == pytest.approx(before, rel=0.05)
    # a level that persists for weeks becomes the new habit
    p, _ = feed_daily(eng, cust, D0 + dt.timedelta(days=78), [25.0] * 40, p)
    assert p.baseline_median == pytest.approx(25.0)


def test_sustained_drop() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    p, _ = feed_daily(eng, cust, D0, [8.0] * 60)
    p, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=60), [0.05] * 12, p)
    assert alerts == []
    p, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=72), [0.05] * 3, p)
    assert [a.rule for a in alerts] == ["sustained_drop"]
    assert alerts[0].customer_facing is False
    assert "8.0" in alerts[0].explanation.en


def test_interval_duplicates_late_and_estimates() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone="Europe/London")
    day = dt.date(2024, 3, 4)
    rs = half_hourly(day, [0.25] * 48, "Europe/London")
    p, _, rej, dup = feed(eng, cust, rs + rs[:10])
    assert (rej, dup) == (0, 10)
    assert cycle_totals(eng, p)[dt.date(2024, 3, 1)] == pytest.approx(12.0)
    # an estimate replaced by the actual read of the same interval
    nxt = half_hourly(day + dt.timedelta(days=1), [0.5] * 48, "Europe/London")
    est = Reading("interval", nxt[0].ts, 3.0, interval_s=1800, estimated=True)
    p, _, _, _ = feed(eng, cust, [est], p)
    assert cycle_totals(eng, p)[dt.date(2024, 3, 1)] == pytest.approx(15.0)
    p, _, _, dup = feed(eng, cust, nxt, p)
    assert dup == 0
    assert cycle_totals(eng, p)[dt.date(2024, 3, 1)] == pytest.approx(36.0)
    # late by 3 days: counted; late by 30 days: rejected with a reason, nothing lost silently
    later = half_hourly(day + dt.timedelta(days=8), [0.1] * 48, "Europe/London")
    p, _, _, _ = feed(eng, cust, later, p)
    late = half_hourly(day + dt.timedelta(days=6), [0.2] * 2, "Europe/London")
    res = eng.process(p, late[0], cust)
    assert res.rejected is None and not res.duplicate
    old = Reading("interval", rs[0].ts - 30 * 86400, 1.0)
    res2 = eng.process(res.profile, old, cust)
    assert res2.rejected is not None and res2.rejected.code == "baselines.readings.too_late"
    assert res2.profile is res.profile


def test_dst_day_has_full_coverage() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone="Europe/London")
    short = half_hourly(dt.date(2024, 3, 31), [0.5] * 46, "Europe/London")
    long_ = half_hourly(dt.date(2024, 10, 27), [0.5] * 50, "Europe/London")
    p, _, rej, dup = feed(eng, cust, short + long_)
    p, _, _, _ = feed(eng, cust, half_hourly(dt.date(2024, 11, 20), [0.5] * 2, "Europe/London"), p)
    assert rej == dup == 0
    march = next(c for c in p.closed_cycles if dt.date.fromordinal(c.start) == dt.date(2024, 3, 1))
    assert march.coverage == pytest.approx(1 / 31, abs=1e-4)  # 46 half-hours make the 23-hour day complete
    # both DST days are final and complete: they entered the baseline ring with their full kWh
    assert p.final_start is not None
    assert p.final_days[dt.date(2024, 10, 27).toordinal() - p.final_start] == pytest.approx(25.0)
    totals = cycle_totals(eng, p)
    assert totals[dt.date(2024, 3, 1)] == pytest.approx(23.0)
    assert totals[dt.date(2024, 10, 1)] == pytest.approx(25.0)


def test_register_reads() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()

    def reg(hours: float, v: float, est: bool = False) -> Reading:
        return Reading("register", t0 + hours * 3600, v, estimated=est)

    # 48 kWh over two days is spread 24/24; a later read 12 h on adds 6 to day 3
    p, _, rej, dup = feed(eng, cust, [reg(0, 1000.0), reg(48, 1048.0), reg(60, 1054.0)])
    assert (rej, dup) == (0, 0)
    assert p.open_days[dt.date(2024, 1, 1).toordinal()].kwh == pytest.approx(24.0)
    assert p.open_days[dt.date(2024, 1, 3).toordinal()].kwh == pytest.approx(6.0)
    # the same read twice counts once; a register that goes backwards is rejected
    res = eng.process(p, reg(60, 1054.0), cust)
    assert res.duplicate
    res = eng.process(p, reg(72, 1050.0), cust)
    assert res.rejected is not None and res.rejected.code == "baselines.readings.register_backwards"
    assert res.rejected.numbers["previous_kwh"] == 1054.0
    # meter replaced: the new register starts near zero; not counted as consumption
    p2, _, rej, _ = feed(eng, cust, [reg(72, 3.0), reg(96, 15.0)], p)
    assert rej == 0
    assert p2.reasons["_register"][0] == "baselines.readings.meter_reset"
    assert sum(cycle_totals(eng, p2).values()) == pytest.approx(54.0 + 12.0)
    # an estimated read is provisional until the next actual read replaces it
    p3, _, _, _ = feed(eng, cust, [reg(120, 40.0, est=True)], p2)
    assert sum(cycle_totals(eng, p3).values()) == pytest.approx(66.0)
    snap = eng.snapshot(p3, cust, None, dt.datetime(2024, 1, 6, tzinfo=dt.UTC))
    assert snap.cycle.cycle_to_date_kwh == pytest.approx(66.0 + 25.0)
    p4, _, _, _ = feed(eng, cust, [reg(144, 30.0)], p3)
    assert sum(cycle_totals(eng, p4).values()) == pytest.approx(66.0 + 15.0)


def test_from_contract_models() -> None:
    rec = CustomerRecord(customer_id="c1", read_day=9, cycle_months=2, timezone="Asia/Shanghai")
    cust = CustomerConfig.from_record(rec)
    mr = MeterReading.model_validate({"meter_id": "m1", "ts": "2024-05-01T00:30:00+08:00", "kwh": 0.5})
    r = Reading.from_contract(mr)
    res = Engine().process(Profile.new("c1"), r, cust, SegmentRef(id=2, label="x"))
    assert res.rejected is None
    assert dt.date.fromordinal(res.profile.open_cycles[-1].start) == dt.date(2024, 3, 9)
    with pytest.raises(ValueError, match="timezone"):
        CustomerConfig("c", timezone="Nowhere/Town")


def test_load_history_enables_same_period_from_day_one() -> None:
    eng = Engine(literal_rules())
    cust = CustomerConfig("c1", timezone=UTC)
    rows = [
        HistoryRow(
            customer_id="c1",
            start=dt.date(2023, m, 1),
            end=dt.date(2023, m + 1, 1) - dt.timedelta(days=1),
            kwh=150.0,
        )
        for m in range(1, 12)
    ]
    p = eng.load_history(Profile.new("c1"), rows, cust)
    assert len(p.closed_cycles) == 11
    p, alerts = feed_daily(eng, cust, dt.date(2024, 1, 1), days(20, 10.0), p)
    assert [a.rule for a in alerts if a.rule == "same_period_reached"] == ["same_period_reached"]
    snap = eng.snapshot(p, cust, None, dt.datetime(2024, 1, 21, tzinfo=dt.UTC))
    assert snap.same_period.kwh == pytest.approx(150.0) and snap.same_period.coverage == pytest.approx(1.0)
    assert sorted(snap.open_alerts) == sorted(a.alert_id for a in alerts)
    assert alert_id("c1", "same_period_reached", dt.date(2024, 1, 1)) in snap.open_alerts
    assert snap.baseline.cycles[0].end == dt.date(2023, 1, 31)
    # December 2023 had no data at all: it is a cycle with zero coverage, not a missing row
    assert [(c.start, c.coverage) for c in snap.baseline.cycles[-1:]] == [(dt.date(2023, 12, 1), 0.0)]


def test_profile_is_compact_and_versioned() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    p, _ = feed_daily(eng, cust, dt.date(2021, 1, 1), [7.0 + (i % 7) for i in range(3 * 365 + 60)])
    data = p.to_dict()
    raw = json.dumps(data, separators=(",", ":"))
    assert len(p.closed_cycles) == 36
    assert len(raw) < 2500
    assert Profile.from_dict(json.loads(raw)) == p
    data["v"] = 3
    with pytest.raises(ValueError, match="schema_version"):
        Profile.from_dict(data)


def test_segment_features_are_named_and_bounded() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC, occupancy="rented", arrears_count=2)
    vals = [10.0 if (D0 + dt.timedelta(days=i)).weekday() >= 5 else 5.0 for i in range(400)]
    p, _ = feed_daily(eng, cust, D0, vals)
    f = eng.segment_features(p, cust)
    assert set(f) == {
        "level_kwh_day",
        "variability",
        "seasonality",
        "trend",
        "night_share",
        "weekend_ratio",
        "arrears_amount",
        "arrears_count",
        "complaints_count",
        "rented",
        "tariff_code",
    }
    assert f["weekend_ratio"] > 1.5
    assert f["rented"] == 1.0 and f["arrears_count"] == 2.0
    assert abs(f["trend"]) < 0.05


def test_sudden_increase_escalation_after_a_small_alert_in_the_same_cycle() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    base = [6.0 + (i % 5) * 0.5 for i in range(60)]  # 2023-01-01 .. 2023-03-01
    p, alerts = feed_daily(eng, cust, D0, base)
    assert alerts == []
    # early in the March cycle: a modest excursion (guests), alerted once
    small = [20.0] * 4 + [6.5] * 9
    p, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=60), small, p)
    assert [(a.rule, a.customer_facing) for a in alerts] == [("sudden_increase", True)]
    first = alerts[0]
    # later in the same cycle: a new surge at 3x the level of that alert
    big = [60.0] * 6
    start = D0 + dt.timedelta(days=60 + len(small))
    p2, alerts = feed_daily(eng, cust, start, big, p)
    assert [(a.rule, a.customer_facing) for a in alerts] == [("sudden_increase_escalation", True)]
    esc = alerts[0]
    assert esc.alert_id == alert_id("c1", "sudden_increase_escalation", dt.date(2023, 3, 1))
    assert esc.alert_id != first.alert_id and esc.cycle == first.cycle
    assert [r.code for r in esc.reasons] == [
        "baselines.rules.sudden_increase_escalation",
        "baselines.moderation.escalation",
    ]
    assert esc.reasons[0].numbers["previous_alert_daily_kwh"] == pytest.approx(20.0)
    assert "earlier alert" in esc.explanation.en
    # at most one escalation per cycle; a replay of the same days gives nothing new
    _, more = feed_daily(eng, cust, start + dt.timedelta(days=len(big)), [6.5] * 3 + [200.0] * 5, p2)
    assert more == []
    _, again = feed_daily(eng, cust, start, big, p2)
    assert again == []


def test_no_escalation_for_a_second_excursion_of_the_same_size() -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    p, _ = feed_daily(eng, cust, D0, [6.0 + (i % 5) * 0.5 for i in range(60)])
    p, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=60), [20.0] * 4 + [6.5] * 9, p)
    assert len(alerts) == 1
    _, alerts = feed_daily(eng, cust, D0 + dt.timedelta(days=73), [30.0] * 6, p)
    assert alerts == []  # 1.5x the earlier alert's level: not an escalation
    off = Engine(RulesConfig.model_validate({"default": {"sudden_increase": {"escalation": False}}}))
    q, _ = feed_daily(off, cust, D0, [6.0 + (i % 5) * 0.5 for i in range(60)])
    q, alerts = feed_daily(off, cust, D0 + dt.timedelta(days=60), [20.0] * 4 + [6.5] * 9 + [60.0] * 6, q)
    assert [a.rule for a in alerts] == ["sudden_increase"]


def test_day_values_across_the_ring_and_the_late_window() -> None:
    """The rules read days from the finalised ring and from the still-open late window alike;
    a day below the coverage threshold and a day without data read as unknown."""
    eng = Engine()
    cust = CustomerConfig("c1", timezone=UTC)
    values = [float(i + 1) for i in range(40)]
    p, _ = feed_daily(eng, cust, D0, values)
    p = eng.process(p, Reading.daily(D0 + dt.timedelta(days=41), 9.0, coverage=0.5), cust).profile
    first = D0.toordinal()
    assert p.final_start is not None and p.open_days  # some days finalised, the newest still open
    assert min(p.open_days) > p.final_start
    lo, hi = first - 2, first + 42
    got = day_values(p, lo, hi, eng.rules.min_day_coverage)
    assert len(got) == hi - lo
    assert got[:2] == [None, None]  # before the first reading
    assert got[2:42] == values  # ring and open days, in order
    assert got[42] is None  # day 40 has no reading (a gap)
    assert got[43] is None  # day 41 is only half covered
    # a range inside the ring
    assert day_values(p, first, first + 5, eng.rules.min_day_coverage) == values[:5]
