"""The integer form of a plan that the bill maths runs on.

Why integers: a bill must be exact to the cent and cheap (the worker prices
every customer every day). Every input the catalogue allows is an exact integer
in these units, so sums and products never round; the only rounding is the
documented one to 0.01 of the currency per bill line (:mod:`baselines.tariffs.bill`).

========================  ==============================  =====================================
quantity                  unit                            why exact
========================  ==============================  =====================================
consumption (totals)      Wh (0.001 kWh)                  meters resolve 0.001 kWh at best
TOU period consumption    EU = 0.0001 Wh                  a 4-decimal share of whole Wh
price per kWh / per day   µ = 0.000001 currency           the catalogue allows 6 decimals
amounts                   A = 1e-13 currency              EU x µ/kWh = 1e-7 kWh x 1e-6
========================  ==============================  =====================================

>>> to_micro(Decimal("0.5283")), kwh_to_wh(2760.0)
(528300, 2760000)
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan, PriceVersion

EU_PER_WH = 10_000  # energy unit of TOU period quantities
A_PER_WH_MICRO = 10_000  # amount units of (1 Wh x 1 µ/kWh)
A_PER_EU_MICRO = 1  # amount units of (1 EU x 1 µ/kWh)
A_PER_MICRO = 10_000_000  # amount units of 1 µ (a standing charge per day)
A_PER_CENT = 100_000_000_000  # amount units of 0.01 currency


class NoPriceError(LookupError):
    """A day before the plan's first price version.

    >>> str(NoPriceError("p", dt.date(2000, 1, 1)))
    "tariff plan 'p' has no price in force on 2000-01-01"
    """

    def __init__(self, plan_id: str, day: dt.date) -> None:
        super().__init__(plan_id, day)
        self.plan_id = plan_id
        self.day = day

    def __str__(self) -> str:
        return f"tariff plan {self.plan_id!r} has no price in force on {self.day.isoformat()}"


def to_micro(x: Decimal) -> int:
    """An exact price (<= 6 decimals) in µ.

    >>> to_micro(Decimal("0.05"))
    50000
    """
    return int(x.scaleb(6))


def kwh_to_wh(kwh: float) -> int:
    """A consumption in whole Wh (round half to even; negative or non-finite input is an error).

    >>> kwh_to_wh(1.2344), kwh_to_wh(0.0005)
    (1234, 0)
    """
    if not kwh >= 0 or kwh == float("inf"):
        raise ValueError(f"kWh must be a finite number >= 0, got {kwh!r}")
    return round(kwh * 1000)


def cents_half_up(amount_a: int) -> int:
    """Amount units to whole cents, half away from zero (as bills round).

    >>> half, below = A_PER_CENT // 2, A_PER_CENT // 2 - 1
    >>> cents_half_up(half), cents_half_up(below), cents_half_up(-half)
    (1, 0, -1)
    """
    if amount_a < 0:
        return -cents_half_up(-amount_a)
    return (amount_a + A_PER_CENT // 2) // A_PER_CENT


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    """One price version in integer units."""

    start: int  # ordinal of effective_from
    flat_price: int | None  # µ/kWh (flat energy)
    periods: tuple[str, ...]  # TOU period names ((): flat energy)
    period_prices: tuple[int, ...]  # µ/kWh per period
    hour_period: tuple[int, ...]  # for each local hour 0-23, the index of its period
    fallback_shares: tuple[int, ...] | None  # shares in 1/10000 per period (daily data)
    fallback_price: int | None  # µ/kWh for daily data (flat fallback)
    tier_limits: tuple[int | None, ...]  # Wh per tier period (per month for cycle tiers); None: no limit
    tier_surcharges: tuple[int, ...]  # µ/kWh per tier
    standing: int  # µ per day


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """A plan in integer units, with the version starts for bisection."""

    plan_id: str
    currency: str
    tier_period: str  # none | cycle | year
    year_start: tuple[int, int]  # (month, day) of the tariff year start
    versions: tuple[CompiledVersion, ...]
    starts: tuple[int, ...]
    ntiers: int  # the most tiers of any version

    def version_index(self, ordinal: int) -> int:
        """Index of the version in force on the day ``ordinal`` (NoPriceError before the first)."""
        i = bisect.bisect_right(self.starts, ordinal) - 1
        if i < 0:
            raise NoPriceError(self.plan_id, dt.date.fromordinal(ordinal))
        return i

    def year_start_of(self, ordinal: int) -> int:
        """Ordinal of the first day of the tariff year containing the day ``ordinal``."""
        return _year_start(ordinal, self.year_start)

    def next_year_start(self, ordinal: int) -> int:
        """Ordinal of the first tariff-year start strictly after the day ``ordinal``."""
        return _next_year_start(_year_start(ordinal, self.year_start))


@lru_cache(maxsize=1024)
def _next_year_start(year_start: int) -> int:
    s = dt.date.fromordinal(year_start)
    return dt.date(s.year + 1, s.month, s.day).toordinal()


@lru_cache(maxsize=8192)
def _year_start(ordinal: int, month_day: tuple[int, int]) -> int:
    d = dt.date.fromordinal(ordinal)
    m, dd = month_day
    s = dt.date(d.year, m, dd)
    return (s if s <= d else dt.date(d.year - 1, m, dd)).toordinal()


def _compile_version(v: PriceVersion) -> CompiledVersion:
    from baselines.tariffs.catalogue import FlatEnergy, SharesFallback

    tiers = v.tiers or []
    limits = tuple(None if t.up_to_kwh is None else int(t.up_to_kwh.scaleb(3)) for t in tiers) or (None,)
    surcharges = tuple(to_micro(t.surcharge) for t in tiers) or (0,)
    start, standing = v.effective_from.toordinal(), to_micro(v.standing_charge_per_day)
    e = v.energy
    if isinstance(e, FlatEnergy):
        return CompiledVersion(start, to_micro(e.price), (), (), (), None, None, limits, surcharges, standing)
    names = tuple(p.name for p in e.periods)
    hour_period = [0] * 24
    for i, p in enumerate(e.periods):
        for a, b in p.hours:
            for h in range(a, b):
                hour_period[h] = i
    fb = e.fallback
    shares = tuple(int(fb.shares[n].scaleb(4)) for n in names) if isinstance(fb, SharesFallback) else None
    return CompiledVersion(
        start,
        None,
        names,
        tuple(to_micro(p.price) for p in e.periods),
        tuple(hour_period),
        shares,
        None if isinstance(fb, SharesFallback) else to_micro(fb.price),
        limits,
        surcharges,
        standing,
    )


def compile_plan(plan: Plan) -> CompiledPlan:
    """The integer form of a validated plan."""
    month, day = (int(x) for x in plan.tariff_year_start.split("-"))
    versions = tuple(_compile_version(v) for v in plan.versions)
    return CompiledPlan(
        plan_id=plan.id,
        currency=plan.currency,
        tier_period=plan.tier_period,
        year_start=(month, day),
        versions=versions,
        starts=tuple(v.start for v in versions),
        ntiers=max(len(v.tier_limits) for v in versions),
    )
