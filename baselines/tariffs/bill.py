"""The bill: the cost of consecutive days of consumption under a plan, line by line.

Input: the first day, then one value per consecutive day (a *day use*):

* a float: the day's kWh (daily or register data); a time-of-use plan splits it
  by its ``fallback`` (fixed shares, or one flat price);
* a mapping ``{period: kWh}``: the day's kWh per TOU period, measured from
  interval readings (:func:`baselines.tariffs.tou.split_intervals`); a plan
  without TOU just adds the parts;
* a :class:`PartMeasured` ``(kWh, {period: kWh})``: the day's kWh of which the
  parts were measured per TOU period (partial interval coverage); the rest of
  the day's kWh is split like daily data (the ``fallback``);
* ``None``: no data that day (0 kWh; the standing charge still applies).

Every day's kWh is taken in whole Wh (half to even) once, at the entry; from
there the arithmetic is exact integers (:mod:`baselines.tariffs.compiled`).

How the days are charged, each day with the price version in force that day
(or, with ``prices_on``, every day with the version in force on that date):

* energy: kWh x the energy price (flat, or per TOU period);
* tiers: the kWh of each day are added, in day order, to the consumption of
  the *tier period* (the billing cycle, or the tariff year) so far, which
  starts at ``tier_kwh_before``; the part of it that falls between two tier
  limits pays that tier's ``surcharge`` per kWh on top of the energy price.
  Annual tiers restart from 0 on the tariff year's start day, also inside a
  bill. Monthly (``cycle``) limits are multiplied by ``cycle_months``
  (a bi-monthly cycle has twice the monthly limits); the days of one call must
  lie in one billing cycle;
* standing charge: days x the daily charge.

Rounding, as bills round: each *bill line* (one per component, period or tier
and unit price; days of different versions with the same unit price share a
line) is rounded once to 0.01, half up; the total is the sum of the rounded
lines, so the lines printed add up to the total printed. Consequences:
cost never decreases when any day's kWh grows (every line is monotone), the
TOU energy lines add up to the energy charge, and two bills for the two halves
of a run of days have unrounded amounts that add up *exactly* to the whole
bill's (same lines, same Wh) while their rounded totals differ from the whole's
by at most 0.01 per line of the whole bill.

>>> import datetime as dt
>>> from baselines.tariffs.catalogue import default_catalogue
>>> uk = default_catalogue().plan("uk-london-standard")
>>> b = bill(uk, dt.date(2013, 3, 1), [10.0] * 31)
>>> [(ln.kind, str(ln.quantity), str(ln.unit_price), str(ln.amount)) for ln in b.lines]
[('energy', '310', '0.143', '44.33'), ('standing_charge', '31', '0.17', '5.27')]
>>> b.total
Decimal('49.60')
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, cast

from baselines.tariffs.compiled import (
    A_PER_EU_MICRO,
    A_PER_MICRO,
    A_PER_WH_MICRO,
    EU_PER_WH,
    CompiledPlan,
    CompiledVersion,
    cents_half_up,
    kwh_to_wh,
)

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan


@dataclass(frozen=True, slots=True)
class PartMeasured:
    """A day of ``kwh`` of which ``measured`` (kWh per TOU period, at most ``kwh`` together) was
    measured by interval readings; the rest is split by the plan's fallback like daily data.

    >>> day_wh([PartMeasured(2.0, {"peak": 0.5})])
    ([2000], [{'peak': 500}])
    """

    kwh: float
    measured: Mapping[str, float]


DayUse = float | Mapping[str, float] | PartMeasured | None
Day = dt.date | int  # a date, or its proleptic ordinal (date.toordinal())
LineKind = Literal["energy", "tier_surcharge", "standing_charge"]
_KIND_ORDER = {"energy": 0, "tier_surcharge": 1, "standing_charge": 2}


def ordinal(day: Day) -> int:
    """A day as its ordinal.

    >>> ordinal(dt.date(2024, 1, 1)) == ordinal(738886)
    True
    """
    return day if isinstance(day, int) else day.toordinal()


def units_decimal(units: int, exp: int) -> Decimal:
    """``units x 10**exp`` without trailing zeros (and without an exponent).

    >>> units_decimal(2760000, -3), units_decimal(528300, -6)
    (Decimal('2760'), Decimal('0.5283'))
    """
    d = Decimal(units).scaleb(exp)
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a bill, in integer units (properties give Decimals)."""

    kind: LineKind
    label: str  # "all" | a TOU period name | "tier N" | "standing"
    qty_units: int  # EU (1e-7 kWh) for energy/tier lines, days for the standing charge
    price_micro: int  # µ per kWh (or per day)
    amount_units: int  # exact amount, 1e-13 currency
    cents: int  # the amount rounded half up to 0.01

    @property
    def quantity(self) -> Decimal:
        """kWh (energy and tier lines) or days (standing charge)."""
        return (
            Decimal(self.qty_units) if self.kind == "standing_charge" else units_decimal(self.qty_units, -7)
        )

    @property
    def unit_price(self) -> Decimal:
        return units_decimal(self.price_micro, -6)

    @property
    def amount(self) -> Decimal:
        """The line's amount as billed (rounded to 0.01)."""
        return Decimal(self.cents).scaleb(-2)

    @property
    def exact_amount(self) -> Decimal:
        """The line's amount before rounding (exact)."""
        return Decimal(self.amount_units).scaleb(-13)


@dataclass(frozen=True, slots=True)
class Bill:
    """The cost of the days ``[start, end)`` under one plan."""

    plan_id: str
    currency: str
    start: dt.date
    end: dt.date  # exclusive
    wh: int  # consumption, Wh
    lines: tuple[BillLine, ...]
    tier_wh: tuple[int, ...]  # Wh charged in each tier (() without tiers)
    tier_period_wh_end: int  # consumption of the tier period at the end of the bill, Wh
    estimated_split_wh: int  # Wh split into TOU periods by the fallback shares

    @property
    def cents(self) -> int:
        """The total in cents: the sum of the rounded lines."""
        return sum(ln.cents for ln in self.lines)

    @property
    def total(self) -> Decimal:
        """The total as billed (0.01), the sum of the rounded lines."""
        return Decimal(self.cents).scaleb(-2)

    @property
    def exact_total(self) -> Decimal:
        """The sum of the unrounded lines."""
        return Decimal(sum(ln.amount_units for ln in self.lines)).scaleb(-13)

    @property
    def kwh(self) -> Decimal:
        return units_decimal(self.wh, -3)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def energy_cents(self) -> int:
        """The rounded energy lines only (no tier surcharge, no standing charge)."""
        return sum(ln.cents for ln in self.lines if ln.kind == "energy")


def day_wh(days: Sequence[DayUse]) -> tuple[list[int], list[dict[str, int] | None] | None]:
    """Whole-Wh totals per day, and the measured TOU split per day (``None`` when no day has one).

    >>> day_wh([1.5, None, {"peak": 1.0, "valley": 0.25}])
    ([1500, 0, 1250], [None, None, {'peak': 1000, 'valley': 250}])
    >>> day_wh([1.0, -2.0])
    Traceback (most recent call last):
    ...
    ValueError: kWh must be a finite number >= 0, got -2.0
    """
    try:  # fast path: plain numbers (daily data)
        totals = [round(x * 1000) for x in cast("Sequence[float]", days)]
    except TypeError:
        return _day_wh_mixed(days)
    except (ValueError, OverflowError):
        bad = next(x for x in cast("Sequence[float]", days) if not math.isfinite(x))
        raise ValueError(f"kWh must be a finite number >= 0, got {bad!r}") from None
    if totals and min(totals) <= 0 and min(cast("Sequence[float]", days)) < 0:
        raise ValueError(f"kWh must be a finite number >= 0, got {min(cast('Sequence[float]', days))!r}")
    return totals, None


def _day_wh_mixed(days: Sequence[DayUse]) -> tuple[list[int], list[dict[str, int] | None] | None]:
    totals: list[int] = []
    split: list[dict[str, int] | None] | None = None
    for i, d in enumerate(days):
        if d is None:
            totals.append(0)
        elif isinstance(d, Mapping):
            parts = {k: kwh_to_wh(v) for k, v in d.items()}
            if split is None:
                split = [None] * len(days)
            split[i] = parts
            totals.append(sum(parts.values()))
        elif isinstance(d, PartMeasured):
            parts = {k: kwh_to_wh(v) for k, v in d.measured.items()}
            total = kwh_to_wh(d.kwh)
            if sum(parts.values()) > total:
                raise ValueError(f"measured parts {d.measured} exceed the day's {d.kwh} kWh")
            if split is None:
                split = [None] * len(days)
            split[i] = parts
            totals.append(total)
        else:
            totals.append(kwh_to_wh(d))
    return totals, split


class _Acc:
    """Bill lines being accumulated: key (kind, label, price) -> [quantity, amount units]."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str, int], list[int]] = {}

    def add(self, kind: str, label: str, price: int, qty: int, amount: int) -> None:
        cur = self.lines.get((kind, label, price))
        if cur is None:
            self.lines[(kind, label, price)] = [qty, amount]
        else:
            cur[0] += qty
            cur[1] += amount


def _energy(
    acc: _Acc, v: CompiledVersion, wh: Sequence[int], split: Sequence[dict[str, int] | None] | None
) -> int:
    """Energy lines of one segment; returns the Wh split by fallback shares."""
    total = sum(wh)
    if v.flat_price is not None:
        acc.add("energy", "all", v.flat_price, total * EU_PER_WH, total * EU_PER_WH * v.flat_price)
        return 0
    measured = [0] * len(v.periods)
    fallback_wh = total
    if split is not None:
        present = [parts for parts in split if parts is not None]
        if present:
            unknown = set().union(*present).difference(v.periods)
            if unknown:
                name = sorted(unknown)[0]
                raise ValueError(f"unknown TOU period {name!r}; the plan has {list(v.periods)}")
            for k, name in enumerate(v.periods):
                w = sum([parts.get(name, 0) for parts in present])
                measured[k] = w
                fallback_wh -= w
    shares = v.fallback_shares
    for i, name in enumerate(v.periods):
        eu = measured[i] * EU_PER_WH + (fallback_wh * shares[i] if shares is not None else 0)
        if eu:
            acc.add("energy", name, v.period_prices[i], eu, eu * v.period_prices[i] * A_PER_EU_MICRO)
    if shares is None and fallback_wh:
        price = v.fallback_price or 0
        acc.add("energy", "all", price, fallback_wh * EU_PER_WH, fallback_wh * EU_PER_WH * price)
        return 0
    return fallback_wh if shares is not None else 0


def _tiers(acc: _Acc, v: CompiledVersion, before: int, wh: int, scale: int, tier_wh: list[int]) -> None:
    """Tier surcharge lines for ``wh`` added to a tier period at ``before`` Wh."""
    lo = 0
    end = before + wh
    for k, limit in enumerate(v.tier_limits):
        hi = None if limit is None else limit * scale
        part = (end if hi is None else min(end, hi)) - max(before, lo)
        if part > 0:
            tier_wh[k] += part
            s = v.tier_surcharges[k]
            if s:
                acc.add("tier_surcharge", f"tier {k + 1}", s, part * EU_PER_WH, part * s * A_PER_WH_MICRO)
        if hi is None or hi >= end:
            break
        lo = hi


def cut_days(cp: CompiledPlan, start: int, end: int, fixed_prices: bool) -> list[int]:
    """``start``, ``end`` and the days between where a price version or a tariff year starts."""
    cuts = {start, end}
    if not fixed_prices:
        cuts.update(s for s in cp.starts if start < s < end)
    if cp.tier_period == "year":
        y = cp.next_year_start(start)
        while y < end:
            cuts.add(y)
            y = cp.next_year_start(y)
    return sorted(cuts)


def bill_wh(
    cp: CompiledPlan,
    start: int,
    wh: Sequence[int],
    split: Sequence[dict[str, int] | None] | None = None,
    *,
    tier_before_wh: int = 0,
    cycle_months: int = 1,
    prices_on: int | None = None,
) -> Bill:
    """:func:`bill` on integer input (Wh per day from the ordinal ``start``)."""
    if cycle_months not in (1, 2):
        raise ValueError(f"cycle_months must be 1 or 2, got {cycle_months}")
    if tier_before_wh < 0:
        raise ValueError("tier_kwh_before must be >= 0")
    end = start + len(wh)
    fixed = cp.versions[cp.version_index(prices_on)] if prices_on is not None else None
    acc = _Acc()
    tier_wh = [0] * cp.ntiers
    c = tier_before_wh
    scale = cycle_months if cp.tier_period == "cycle" else 1
    estimated = 0
    cuts = cut_days(cp, start, end, fixed is not None)
    for a, b in itertools.pairwise(cuts):
        v = fixed or cp.versions[cp.version_index(a)]
        if cp.tier_period == "year" and cp.year_start_of(a) == a:
            c = 0
        seg = wh[a - start : b - start]
        seg_split = None if split is None else split[a - start : b - start]
        estimated += _energy(acc, v, seg, seg_split)
        seg_wh = sum(seg)
        if cp.tier_period != "none":
            _tiers(acc, v, c, seg_wh, scale, tier_wh)
            c += seg_wh
        if v.standing:
            acc.add("standing_charge", "standing", v.standing, b - a, (b - a) * v.standing * A_PER_MICRO)
    keys = sorted(acc.lines, key=lambda k: _KIND_ORDER[k[0]])
    lines = tuple(
        BillLine(kind, label, qty, price, amount, cents_half_up(amount))  # type: ignore[arg-type]
        for (kind, label, price), (qty, amount) in ((k, acc.lines[k]) for k in keys)
    )
    return Bill(
        plan_id=cp.plan_id,
        currency=cp.currency,
        start=dt.date.fromordinal(start),
        end=dt.date.fromordinal(end),
        wh=sum(wh),
        lines=lines,
        tier_wh=tuple(tier_wh) if cp.tier_period != "none" else (),
        tier_period_wh_end=c,
        estimated_split_wh=estimated,
    )


def bill(
    plan: Plan,
    start: Day,
    days: Sequence[DayUse],
    *,
    tier_kwh_before: float = 0.0,
    cycle_months: int = 1,
    prices_on: Day | None = None,
) -> Bill:
    """The bill of ``days`` consecutive day uses from ``start`` (see the module doc).

    ``tier_kwh_before``: the consumption of the tier period containing ``start``
    on its days before ``start`` (the cycle's for monthly tiers, the tariff year's
    for annual tiers; ignored when ``start`` is a tariff-year start).

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> b = bill(js, dt.date(2024, 7, 1), [20.0] * 31, tier_kwh_before=2500)
    >>> [(ln.label, str(ln.quantity), str(ln.amount)) for ln in b.lines], b.total
    ([('all', '620', '327.55'), ('tier 2', '360', '18.00')], Decimal('345.55'))
    """
    wh, split = day_wh(days)
    return bill_wh(
        plan.compiled,
        ordinal(start),
        wh,
        split,
        tier_before_wh=kwh_to_wh(tier_kwh_before),
        cycle_months=cycle_months,
        prices_on=None if prices_on is None else ordinal(prices_on),
    )
