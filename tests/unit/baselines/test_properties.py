"""Hypothesis properties of the engine."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules import RulesConfig

from .helpers import cycle_totals, feed, feed_daily

LITERAL = RulesConfig.model_validate({"default": {"same_period_reached": {"max_elapsed_fraction": 1.0}}})
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TZS = st.sampled_from(["UTC", "Europe/London", "Asia/Shanghai", "America/New_York"])


@SETTINGS
@example(level=1.0, start=dt.date(2015, 10, 1), n=415, read_day=25, months=2)  # partly covered same period
@given(
    level=st.floats(0.0, 80.0, allow_nan=False),
    start=st.dates(dt.date(2015, 1, 1), dt.date(2030, 1, 1)),
    n=st.integers(30, 800),
    read_day=st.integers(1, 28),
    months=st.sampled_from([1, 2]),
)
def test_constant_stream_never_alerts(
    level: float, start: dt.date, n: int, read_day: int, months: int
) -> None:
    # even the literal same-period rule: a constant daily level never reaches a whole same-period cycle early
    eng = Engine(LITERAL)
    cust = CustomerConfig("c", read_day=read_day, cycle_months=months, timezone="UTC")
    _, alerts = feed_daily(eng, cust, start, [level] * n)
    assert [a for a in alerts if a.rule != "same_period_reached"] == []
    # a constant level reaches the same-period total only on the last day of a cycle at the earliest
    for a in alerts:
        assert a.triggered_by.date() - dt.timedelta(days=1) >= a.cycle.end - dt.timedelta(days=3)


def _interval_stream(vals: list[float], start: dt.datetime, step_s: int) -> list[Reading]:
    t0 = start.timestamp()
    return [Reading("interval", t0 + step_s * (i + 1), v, interval_s=step_s) for i, v in enumerate(vals)]


@SETTINGS
@given(
    vals=st.lists(
        st.floats(0.0, 3.0, allow_nan=False).map(lambda x: round(x, 3)), min_size=48, max_size=2000
    ),
    factor=st.sampled_from([2, 3, 4, 6, 48]),
    tz=TZS,
    start_day=st.dates(dt.date(2020, 1, 1), dt.date(2026, 12, 1)),
    read_day=st.integers(1, 28),
)
def test_reading_size_does_not_change_cycle_totals(
    vals: list[float], factor: int, tz: str, start_day: dt.date, read_day: int
) -> None:
    from zoneinfo import ZoneInfo

    eng = Engine()
    cust = CustomerConfig("c", read_day=read_day, timezone=tz)
    start = dt.datetime.combine(start_day, dt.time(), tzinfo=ZoneInfo(tz))
    n = len(vals) - len(vals) % factor
    vals = vals[:n]
    fine, _, rej1, _ = feed(eng, cust, _interval_stream(vals, start, 1800))
    coarse_vals = [sum(vals[i : i + factor]) for i in range(0, n, factor)]
    coarse, _, rej2, _ = feed(eng, cust, _interval_stream(coarse_vals, start, 1800 * factor))
    assert rej1 == rej2 == 0
    a, b = cycle_totals(eng, fine), cycle_totals(eng, coarse)
    if factor <= 2 or tz == "UTC":
        # intervals that never straddle local midnight: identical per cycle
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) < 1e-6 * max(1.0, a[k])
    # a cumulative register read at every interval end books the same days as the intervals
    t0 = start.timestamp()
    total = 1000.0
    regs = [Reading("register", t0, total)]
    for i, v in enumerate(vals):
        total += v
        regs.append(Reading("register", t0 + 1800.0 * (i + 1), total))
    by_register, _, rej3, _ = feed(eng, cust, regs)
    assert rej3 == 0
    c = cycle_totals(eng, by_register)
    for k in a:
        assert abs(a[k] - c.get(k, 0.0)) < 1e-6 * max(1.0, total)
    # always: nothing is created or lost
    assert abs(sum(a.values()) - sum(vals)) < 1e-6 * max(1.0, sum(vals))
    assert abs(sum(b.values()) - sum(vals)) < 1e-6 * max(1.0, sum(vals))


@SETTINGS
@given(
    vals=st.lists(st.floats(0.0, 40.0, allow_nan=False), min_size=1, max_size=500),
    cut=st.integers(0, 500),
    start=st.dates(dt.date(2018, 1, 1), dt.date(2028, 1, 1)),
)
def test_state_round_trips_through_json(vals: list[float], cut: int, start: dt.date) -> None:
    eng = Engine(LITERAL)
    cust = CustomerConfig("c", read_day=7, timezone="Europe/London")
    cut = min(cut, len(vals))
    p, _ = feed_daily(eng, cust, start, vals[:cut])
    restored = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert restored == p
    q1, a1 = feed_daily(eng, cust, start + dt.timedelta(days=cut), vals[cut:], p)
    q2, a2 = feed_daily(eng, cust, start + dt.timedelta(days=cut), vals[cut:], restored)
    assert [x.alert_id for x in a1] == [x.alert_id for x in a2]
    assert cycle_totals(eng, q1) == cycle_totals(eng, q2)


@SETTINGS
@given(
    vals=st.lists(st.floats(0.0, 2.0, allow_nan=False), min_size=48 * 3, max_size=48 * 40),
    data=st.data(),
)
def test_redelivery_and_reordering_within_window_change_nothing(
    vals: list[float], data: st.DataObject
) -> None:
    eng = Engine(LITERAL)
    cust = CustomerConfig("c", timezone="Europe/London")
    stream = _interval_stream(vals, dt.datetime(2024, 3, 20, tzinfo=dt.UTC), 1800)
    clean, alerts_clean, _, _ = feed(eng, cust, stream)
    # redeliver random readings right after themselves or a little later (at-least-once delivery)
    noisy: list[Reading] = []
    for i, r in enumerate(stream):
        noisy.append(r)
        if data.draw(st.booleans(), label=f"dup{i % 7}"):
            noisy.append(r)
    # and shuffle small blocks (out of order by at most a day, inside the 7-day late window)
    block = 48
    shuffled: list[Reading] = []
    for i in range(0, len(noisy), block):
        chunk = noisy[i : i + block]
        shuffled.extend(data.draw(st.permutations(chunk), label="perm"))
    p, alerts, rej, dups = feed(eng, cust, shuffled)
    assert rej == 0
    assert dups == len(noisy) - len(stream)
    assert cycle_totals(eng, p) == cycle_totals(eng, clean)
    assert sorted(a.alert_id for a in alerts) == sorted(a.alert_id for a in alerts_clean)
