"""``tier_crossing``'s quick exit (``_quick_exit``) against the full bound (``_nothing_to_warn``).

The quick exit may only say "nothing to warn" where the full bound says so too (else a
tier-crossing warning would be lost); it may leave any case undecided (the full bound
then decides). Checked on every evaluation of generated consumption series under an
annual-tier plan (with the tariff year's kWh before the cycle near a tier limit) and a
monthly-tier plan, daily and half-hourly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import baselines.rules.tier_crossing as tc
from baselines.billing import plan_on, tier_facts
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.fold import fold_inplace
from baselines.late_window import DayLocator
from baselines.plans import Tariffs
from baselines.profile import ClosedCycleT, OpenCycle, Profile
from baselines.readings import Reading
from baselines.rules.config import RulesConfig
from baselines.rules.context import RuleContext
from baselines.tariffs import Plan

JS, FJ = "cn-js-residential", "cn-fj-residential-monthly"  # annual tiers 2,760 / 4,800; monthly 200 / 400
D = dt.date
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def both_exits() -> Iterator[list[tuple[bool | None, bool]]]:
    """Record (quick exit, full bound) of every evaluation that reaches the quick exit (the quick exit:
    True, "nothing to warn"; None, "the full bound says False"; False, undecided)."""
    seen: list[tuple[bool | None, bool]] = []
    quick, marked = tc._quick_exit, tc._marked_out_of_reach

    def spy(ctx: RuleContext, plan: Plan) -> bool | None:
        q = quick(ctx, plan)
        seen.append((q, tc._nothing_to_warn(ctx, plan)))  # both read the profile only
        return q

    def spy_marked(ctx: RuleContext, mk: tc._Mark) -> bool:
        q = marked(ctx, mk)
        if q:  # (else check goes on to the quick exit)
            seen.append((q, tc._nothing_to_warn(ctx, _plan(ctx))))
        return q

    with mock.patch.object(tc, "_quick_exit", spy), mock.patch.object(tc, "_marked_out_of_reach", spy_marked):
        yield seen


def _plan(ctx: RuleContext) -> Plan:
    assert ctx.tariffs is not None
    plan = plan_on(ctx.profile, ctx.customer, ctx.tariffs, ctx.cycle.start)
    assert plan is not None
    return plan


def _profile(eng: Engine, cust: CustomerConfig, before_kwh: float) -> Profile:
    """January-June 2024 with ``before_kwh`` in all (the tariff year's kWh before July)."""
    rows: list[dict[str, object]] = []
    for m in range(1, 7):
        end = D(2024, m + 1, 1) - dt.timedelta(days=1)
        rows.append(
            {"customer_id": "c", "start": f"2024-{m:02d}-01", "end": end.isoformat(), "kwh": before_kwh / 6}
        )
    return eng.load_history(Profile.new("c"), rows, cust)


def _feed(eng: Engine, cust: CustomerConfig, p: Profile, days: list[float | None]) -> None:
    for i, v in enumerate(days):
        if v is not None:
            eng.process_inplace(p, Reading.daily(D(2024, 7, 1) + dt.timedelta(days=i), v), cust)


@SETTINGS
@example(plan=JS, before=2760.0 - 31 * 5.0, days=[5.0] * 40, read_day=1)  # lands on the limit
@example(plan=FJ, before=0.0, days=[6.45] * 31 + [0.0] * 10, read_day=1)
@given(
    plan=st.sampled_from([JS, FJ]),
    before=st.floats(0.0, 6000.0, allow_nan=False),
    days=st.lists(st.one_of(st.none(), st.floats(0.0, 80.0, allow_nan=False)), min_size=20, max_size=75),
    read_day=st.integers(1, 28),
)
def test_quick_exit_never_hides_a_warning_on_daily_series(
    plan: str, before: float, days: list[float | None], read_day: int
) -> None:
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=plan, read_day=read_day, timezone="UTC")
    p = _profile(eng, cust, before)
    with both_exits() as seen:
        _feed(eng, cust, p, days)
    assert [(q, full) for q, full in seen if q and not full] == []
    assert [(q, full) for q, full in seen if q is None and full] == []  # _within_reach: full says False
    m = (p.money_cache or {}).get(tc.MEMO)
    if m is not None and m.closed == len(p.closed_cycles) and m.last is p.closed_cycles[-1]:
        # a memo carried over a cycle closing (_before_plus) holds what tier_facts computes afresh
        i = next(i for i, c in enumerate(p.open_cycles) if c.start == m.start)
        assert m.before == tier_facts(p, m.plan, i)[0]


@SETTINGS
@given(
    before=st.floats(2000.0, 2760.0, allow_nan=False),
    level=st.floats(0.0, 4.0, allow_nan=False),
    spikes=st.lists(
        st.tuples(st.integers(0, 30 * 48 - 1), st.floats(0.0, 40.0, allow_nan=False)), max_size=6
    ),
    late=st.integers(0, 6),
)
def test_quick_exit_never_hides_a_warning_on_half_hourly_series_with_late_readings(
    before: float, level: float, spikes: list[tuple[int, float]], late: int
) -> None:
    # half-hours of July 2024; spikes replace some values; every 7th day arrives ``late`` days late
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, before)
    values = [level / 48] * (30 * 48)
    for i, v in spikes:
        values[i] = v
    t0 = dt.datetime(2024, 7, 1, tzinfo=dt.UTC).timestamp()
    order = sorted(range(len(values)), key=lambda i: i // 48 + (late if (i // 48) % 7 == 3 else 0))
    with both_exits() as seen:
        for i in order:
            eng.process_inplace(
                p, Reading("interval", t0 + 1800.0 * (i + 1), values[i], interval_s=1800), cust
            )
    assert [(q, full) for q, full in seen if q and not full] == []
    assert [(q, full) for q, full in seen if q is None and full] == []  # _within_reach: full says False


def test_quick_exit_decides_the_common_case_alone() -> None:
    # far below the next tier: every evaluation exits on the quick path, the full bound never runs
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, 600.0)
    with mock.patch.object(tc, "_nothing_to_warn", side_effect=AssertionError("full bound ran")):
        _feed(eng, cust, p, [8.0] * 60)
    assert tc.MEMO in (p.money_cache or {})


def test_within_reach_spares_the_full_bound_only_while_the_tier_is_unwarned() -> None:
    # 2,700 kWh before July: 10 kWh a day warns of tier 2 (once per cycle: July's later evaluations
    # end at that); then 0.5 kWh a day, and 2 kWh a day in August, which keep the tariff year below
    # the limit, in reach of the bound but warned of already: the full bound decides ("nothing to warn")
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, 2700.0)
    with both_exits() as seen:
        alerts = [
            a
            for i, v in enumerate([10.0] * 3 + [0.5] * 28 + [2.0] * 12)
            for a in eng.process_inplace(
                p, Reading.daily(D(2024, 7, 1) + dt.timedelta(days=i), v), cust
            ).alerts
        ]
    assert [a.rule for a in alerts] == ["tier_crossing"]
    assert any(q is None for q, _ in seen)  # near the tier, before the warning: decided without it
    assert all(not full for q, full in seen if q is None)
    assert any(q is False and full for q, full in seen)  # warned of: left to the full bound


def test_quick_exit_leaves_a_reachable_tier_to_the_full_bound() -> None:
    # 2,700 kWh before July at 10 kWh a day: the 2,760 kWh limit is in reach, the rule warns
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, 2700.0)
    with both_exits() as seen:
        alerts = [
            a
            for v in range(5)
            for a in eng.process_inplace(p, Reading.daily(D(2024, 7, 1 + v), 10.0), cust).alerts
        ]
    assert [a.rule for a in alerts] == ["tier_crossing"]
    assert seen and not seen[-1][0]


@contextmanager
def running_bound() -> Iterator[list[bool]]:
    """Record, for every evaluation where the running bound says "out of reach", what the full bound says."""
    seen: list[bool] = []
    quick, marked, fast, armed = tc._quick_exit, tc._marked_out_of_reach, tc._still_out_of_reach, tc._armed
    current: list[tuple[RuleContext, Plan]] = []

    def spy_quick(ctx: RuleContext, plan: Plan) -> bool | None:
        current[:] = [(ctx, plan)]
        return quick(ctx, plan)

    def spy_marked(ctx: RuleContext, mk: tc._Mark) -> bool:
        current[:] = [(ctx, _plan(ctx))]
        out = marked(ctx, mk)  # (the running bound written out)
        if out:
            seen.append(tc._nothing_to_warn(*current[0]))
        return out

    def spy_fast(p: Profile, mk: tc._Mark, before: float, n: int, low: float, high: float) -> bool:
        out = fast(p, mk, before, n, low, high)
        if out:
            seen.append(tc._nothing_to_warn(*current[0]))  # read-only
        return out

    def spy_armed(ctx: RuleContext, mk: tc._Mark) -> bool:
        out = armed(ctx, mk)
        if out:  # check's first test, before the plan look-up
            seen.append(tc._nothing_to_warn(ctx, _plan(ctx)))
        return out

    with (
        mock.patch.object(tc, "_quick_exit", spy_quick),
        mock.patch.object(tc, "_marked_out_of_reach", spy_marked),
        mock.patch.object(tc, "_armed", spy_armed),
        mock.patch.object(tc, "_still_out_of_reach", spy_fast),
    ):
        yield seen


@SETTINGS
@example(before=2760.0 - 31 * 5.0, level=5.0, estimates=[(40, 30.0)], late=0)
@given(
    before=st.floats(1500.0, 2760.0, allow_nan=False),
    level=st.floats(0.0, 12.0, allow_nan=False),
    estimates=st.lists(
        st.tuples(st.integers(0, 30 * 48 - 1), st.floats(0.0, 40.0, allow_nan=False)), max_size=8
    ),
    late=st.integers(0, 6),
)
def test_running_bound_never_hides_a_warning_with_estimates_replaced(
    before: float, level: float, estimates: list[tuple[int, float]], late: int
) -> None:
    # half-hours of July 2024; some slots first arrive as (high) estimates that the actual value
    # replaces (a day's kWh goes down: the fold gives up the running bound until the next mark)
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, before)
    t0 = dt.datetime(2024, 7, 1, tzinfo=dt.UTC).timestamp()
    est = dict(estimates)
    order = sorted(range(30 * 48), key=lambda i: i // 48 + (late if (i // 48) % 5 == 2 else 0))
    with running_bound() as seen:
        for i in order:
            ts = t0 + 1800.0 * (i + 1)
            if i in est:
                eng.process_inplace(p, Reading("interval", ts, est[i], interval_s=1800, estimated=True), cust)
            eng.process_inplace(p, Reading("interval", ts, level / 48, interval_s=1800), cust)
    assert [full for full in seen if not full] == []


def test_running_bound_decides_most_evaluations() -> None:
    # far below the next tier: after the first evaluation of a cycle, the full pass rarely runs
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, 600.0)
    full = mock.Mock(wraps=tc._bound_exit)
    with running_bound() as seen, mock.patch.object(tc, "_bound_exit", full):
        _feed(eng, cust, p, [8.0] * 60)
    assert len(seen) >= 40 and all(seen)
    assert full.call_count <= 60 - len(seen)


def test_the_fold_keeps_the_running_bound() -> None:
    cust, cfg, loc = CustomerConfig("c", timezone="UTC"), RulesConfig(), DayLocator()
    p = Profile.new("c")
    for day, v in ((1, 8.0), (2, 2.5), (3, 4.0), (3, 4.0)):  # the last one: a redelivery
        fold_inplace(p, Reading.daily(D(2024, 7, day), v), cust, cfg, loc)
    assert (p.booked_kwh, p.peak_kwh) == (14.5, 8.0)
    t0 = dt.datetime(2024, 7, 4, tzinfo=dt.UTC).timestamp()
    for i, v in enumerate([1.0, 2.0, 3.5]):
        fold_inplace(p, Reading("interval", t0 + 1800.0 * (i + 1), v, interval_s=1800), cust, cfg, loc)
    assert (p.booked_kwh, p.peak_kwh) == (21.0, 8.0)
    t = t0 + 1800.0 * 4
    fold_inplace(p, Reading("interval", t, 9.0, interval_s=1800), cust, cfg, loc)
    assert (p.booked_kwh, p.peak_kwh) == (30.0, 15.5)  # the day's kWh, not the reading's
    fold_inplace(p, Reading("interval", t + 1800.0, 1.0, interval_s=1800, estimated=True), cust, cfg, loc)
    assert p.booked_kwh == float("inf")  # a slow path (an estimate a later value may lower): no bound
    p.booked_kwh = 0.0
    fold_inplace(p, Reading("register", t, 100.0), cust, cfg, loc)
    assert p.booked_kwh == float("inf")
    assert Profile.from_dict(p.to_dict()).tier_mark is None  # transient


@contextmanager
def memos_against_tier_facts() -> Iterator[list[bool]]:
    """Record, for every memo the quick exit builds or carries over, whether it equals the tier
    facts computed afresh (``tier_facts`` on a copy without the money cache)."""
    seen: list[bool] = []
    memo = tc._memo

    def spy(ctx: RuleContext, plan: Plan) -> tc._Memo | None:
        m = memo(ctx, plan)
        q = ctx.profile.clone()
        q.money_cache = None
        before, limits = tier_facts(q, plan, ctx.cycle_index)
        if limits is None:
            seen.append(m is None)
            return m
        scale = tc._scale(ctx, plan)
        steps = [(lim * scale, lim * scale / 1000) for lim in limits if lim is not None]
        seen.append(m is not None and m.before == before and m.steps == (tuple(steps) if limits else None))
        return m

    with mock.patch.object(tc, "_memo", spy):
        yield seen


@SETTINGS
@example(plan=JS, before=2000.0, days=[9.0] * 150, read_day=15)
@given(
    plan=st.sampled_from([JS, FJ]),
    before=st.floats(0.0, 3000.0, allow_nan=False),
    days=st.lists(st.one_of(st.none(), st.floats(0.0, 40.0, allow_nan=False)), min_size=60, max_size=150),
    read_day=st.integers(1, 28),
)
def test_memos_derived_from_the_last_equal_tier_facts_across_a_tariff_year(
    plan: str, before: float, days: list[float | None], read_day: int
) -> None:
    # October 2024 to at most February 2025: cycles open and close across the tariff year's start
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=plan, read_day=read_day, timezone="UTC")
    rows = [{"customer_id": "c", "start": "2024-01-01", "end": "2024-09-30", "kwh": before}]
    p = eng.load_history(Profile.new("c"), rows, cust)
    with memos_against_tier_facts() as seen:
        for i, v in enumerate(days):
            if v is not None:
                eng.process_inplace(p, Reading.daily(D(2024, 10, 1) + dt.timedelta(days=i), v), cust)
    assert all(seen)  # (some series give no evaluation past the first days of a cycle)


def test_a_new_cycle_takes_its_memo_from_the_last_one() -> None:
    # 8 kWh a day from July: each cycle's memo after the first comes from the previous one
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, 600.0)
    facts = mock.Mock(wraps=tier_facts)
    with memos_against_tier_facts() as seen, mock.patch.object(tc, "tier_facts", facts):
        _feed(eng, cust, p, [8.0] * 100)
    # one memo per cycle opening (July to October); a close carries it over in _armed_over_close
    # (checked against tier_facts in test_tier_over_close.py), or here where that does not hold
    assert len(seen) >= 4 and all(seen)
    assert facts.call_count == 1  # the first memo only; later cycles: derived or carried over


def _near_limit_ctx(open_kwh: float) -> tuple[RuleContext, tc._Memo]:
    """2,600 kWh of the tariff year closed before July, ``open_kwh`` in July's cycle so far."""
    jan, jul = D(2024, 1, 1).toordinal(), D(2024, 7, 1).toordinal()
    p = Profile.new("c")
    p.newest_day = jul + 10
    p.closed_cycles.append(ClosedCycleT(jan, jul, 2600.0, 1.0))
    p.open_cycles.append(OpenCycle(jul, jul + 31, open_kwh, 10.0))
    cfg = RulesConfig()
    cust = CustomerConfig("c", tariff_plan=JS)
    ctx = RuleContext(
        p, cfg, cfg.resolve("residential", None), cust, None, 0.0, None, jul + 9, 0, Tariffs.default()
    )
    m = tc._memo(ctx, _plan(ctx))
    assert m is not None and m.before == 2600.0
    return ctx, m


def test_within_reach_leaves_the_slack_band_and_a_tier_edge_undecided() -> None:
    # the full bound's cycle-to-date may differ from the quick one by rounding: within SLACK_KWH of
    # the gap, or of the tier limit, the full bound decides (fails when either margin is dropped)
    ctx, m = _near_limit_ctx(100.0)
    gap = 2760.0 - 2600.0 - 100.0
    assert tc._within_reach(ctx, m, 0, 2600.0, 100.0, gap + 2 * tc.SLACK_KWH) is None
    assert tc._within_reach(ctx, m, 0, 2600.0, 100.0, gap - tc.SLACK_KWH / 2) is False  # in the band
    ctx, m = _near_limit_ctx(159.9996)  # 0.4 Wh below the limit: the next tier may be tier 3
    assert tc._within_reach(ctx, m, 0, 2600.0, 159.9996, 1000.0) is False
