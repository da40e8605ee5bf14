"""The manager's daily digest (baselines.digest): ranking, folding, nothing lost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.digest import (
    DigestPolicy,
    build_digest,
    day_end,
    digest_day,
    rank_key,
    sample_alert,
    stake,
)
from meterwatch.contracts import Alert, Money

DAY = dt.date(2024, 3, 2)
RULES = ("same_period_reached", "sustained_drop", "sudden_increase", "projected_over_same_period")


def _with_money(a: Alert, projected: str, ref: str) -> Alert:
    m = Money(
        currency="GBP",
        to_date=Decimal("10"),
        projected=Decimal(projected),
        same_period=Decimal("1"),
        same_period_at_current_prices=Decimal(ref),
    )
    return a.model_copy(update={"money": m})


@st.composite
def alerts(draw: st.DrawFn) -> list[Alert]:
    n = draw(st.integers(0, 25))
    out = []
    for k in range(n):
        rule = draw(st.sampled_from(RULES))
        kwh = st.one_of(st.none(), st.floats(0, 200, allow_nan=False))
        a = sample_alert(
            f"a{k:02d}",
            rule,
            recent=draw(kwh),
            baseline=draw(kwh),
            ctd=draw(kwh),
            sp=draw(kwh),
        )
        if draw(st.booleans()):
            a = _with_money(a, str(draw(st.integers(0, 500))), str(draw(st.integers(0, 500))))
        out.append(a)
    return out


policies = st.builds(
    DigestPolicy,
    actionable_per_day=st.integers(0, 5),
    min_money=st.sampled_from([0.0, 10.0, 100.0]),
    min_excess_kwh=st.sampled_from([0.0, 50.0, 500.0]),
    fold_rules=st.sampled_from([(), ("same_period_reached",), ("same_period_reached", "sustained_drop")]),
)


@settings(max_examples=150, deadline=None)
@given(alerts(), policies, st.randoms(use_true_random=False))
def test_every_alert_is_pushed_or_folded_exactly_once(xs: list[Alert], p: DigestPolicy, rnd: object) -> None:
    d = build_digest("m1", DAY, xs + xs[:3], p)  # a redelivered alert counts once
    ids = [i.alert_id for i in d.items]
    assert sorted(ids) == sorted({a.alert_id for a in xs})
    assert d.actionable_count + d.folded_count == len(xs)
    assert [i.rank for i in d.items] == list(range(1, len(xs) + 1))
    # the input order changes nothing
    shuffled = list(xs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert build_digest("m1", DAY, shuffled, p) == d


@settings(max_examples=150, deadline=None)
@given(alerts(), policies)
def test_actionable_items_are_the_top_of_the_ranking_within_the_policy(
    xs: list[Alert], p: DigestPolicy
) -> None:
    d = build_digest("m1", DAY, xs, p)
    keys = [rank_key(i.stake, i.alert_id) for i in d.items]
    assert keys == sorted(keys)
    assert d.actionable_count <= p.actionable_per_day
    for i in d.actionable:
        assert i.rule not in p.fold_rules
        s = i.stake
        assert s.excess_kwh >= p.min_excess_kwh
        assert s.money is None or s.money >= p.min_money
    # an item folded for the daily limit ranks below every actionable item
    last = max((i.rank for i in d.actionable), default=0)
    for i in d.folded:
        if i.reason == "folded.daily_limit":
            assert i.rank > last
            assert d.actionable_count == p.actionable_per_day
    # an eligible item is never folded while a lower-ranked one is pushed
    for i in d.folded:
        if i.reason not in ("folded.rule", "folded.below_threshold"):
            assert all(j.rank < i.rank for j in d.actionable)


@given(alerts())
def test_stakes_are_never_negative(xs: list[Alert]) -> None:
    for a in xs:
        s = stake(a)
        assert s.excess_kwh >= 0
        assert s.money is None or s.money >= 0


def test_money_outranks_kwh_and_larger_money_ranks_first() -> None:
    big_kwh = sample_alert("k", "sustained_drop", recent=0.0, baseline=100.0)
    small = _with_money(sample_alert("s", "sustained_drop", recent=1.0, baseline=2.0), "20", "10")
    large = _with_money(sample_alert("l", "sustained_drop", recent=1.0, baseline=2.0), "90", "10")
    d = build_digest("m1", DAY, [big_kwh, small, large], DigestPolicy(actionable_per_day=2, min_excess_kwh=0))
    assert [(i.alert_id, i.actionable) for i in d.items] == [("l", True), ("s", True), ("k", False)]
    assert d.items[0].stake.money == 80.0 and d.items[0].stake.currency == "GBP"


def test_same_period_reached_is_folded_even_at_the_top() -> None:
    spr = sample_alert("spr", "same_period_reached", ctd=900.0, sp=100.0)
    drop = sample_alert("drop", "sustained_drop", recent=1.0, baseline=2.0)
    d = build_digest("m1", DAY, [drop, spr], DigestPolicy(min_excess_kwh=0.0))
    assert [(i.alert_id, i.rank, i.reason) for i in d.items] == [
        ("spr", 1, "folded.rule"),
        ("drop", 2, "actionable"),
    ]


def test_threshold_folds_small_stakes() -> None:
    small = sample_alert("small", "sustained_drop", recent=1.0, baseline=2.0)  # 30 kWh over the cycle
    big = sample_alert("big", "sustained_drop", recent=1.0, baseline=9.0)  # 240 kWh
    d = build_digest("m1", DAY, [small, big], DigestPolicy(min_excess_kwh=100.0))
    assert [(i.alert_id, i.reason) for i in d.items] == [
        ("big", "actionable"),
        ("small", "folded.below_threshold"),
    ]


def test_customer_facing_alerts_are_refused() -> None:
    with pytest.raises(ValueError, match="customer-facing"):
        build_digest("m1", DAY, [sample_alert("c", "sudden_increase", cf=True)], DigestPolicy())


def test_digest_day_and_its_end_agree() -> None:
    for tz in ("UTC", "Asia/Shanghai", "Europe/London"):
        t = dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC)  # London's clocks change that night
        d = digest_day(t, tz)
        end = day_end(d, tz)
        assert end > t
        assert digest_day(end, tz) == d + dt.timedelta(days=1)
        assert digest_day(end - dt.timedelta(seconds=1), tz) == d
