"""The per-customer habit profile: versioned, compact, JSON-serialisable state.

The fold (``baselines.fold``) and the rules own the logic; this module owns the
shape and its (de)serialisation. ``Profile.to_dict()`` gives plain JSON data
(short keys, rounded floats) that the worker stores in a RocksDB table;
``Profile.from_dict`` reads it back and refuses an unknown ``schema_version``.
The short keys are the stored format (schema 1): attribute names may change,
the keys may not.

State kept per customer (stored key in brackets):

* ``open_days`` [o]: the days still inside the late window (default 7 days
  behind ``newest_day``), each an ``OpenDay``: kWh, seconds covered, a bitmask
  of the interval slots seen (so a redelivered reading counts once), estimated
  slots that a later actual read replaces, night-time kWh, and (optional 8th
  element) the booked value of each seen interval slot.
* ``open_cycles`` [co]: billing cycles with days still open, each an
  ``OpenCycle`` ``(start, end_excl, kWh of final days, covered days)``; the
  last one is the running cycle.
* ``closed_cycles`` [cy]: the last 36 closed cycles ``(start, end_excl, kWh, coverage)``.
* ``final_days`` [dy] from ``final_start`` [ds]: the last ``ring_days`` final
  daily totals (``None``: missing or partial day) with ``high_flags`` [fh] /
  ``low_flags`` [fl] bitmasks of days that were far above/below the baseline,
  excluded from it so that the surge the baseline should detect does not drag
  it up, and ``special_flags`` [fx], the ring's holidays and away days
  (``baselines.special_days``) and the days before the current occupant moved in,
  also kept out of it (absent: none); ``calendar_key`` [ck], the customer's region,
  away periods and move-in day they were derived for (``baselines.special_days``;
  absent: none).
* the baseline statistics [bm, wf, ns]: ``baseline_median``, ``baseline_mad``,
  ``baseline_days`` (unflagged known days behind them), ``p95_day`` (the
  95th-percentile day of the ring, spikes included), ``weekday_factors``,
  ``night_share``;
* the register state [rg, re], which rule fired in which cycle [f], rule
  streaks [s] and why a rule could not be evaluated [r];
* the tariff plans the customer was on [tp]: ``(from_day, plan_id)`` (``""``: none),
  see ``baselines.billing``; absent in profiles stored before money existed.
* the customer's learned temperature response [wx] (``baselines.weather.Response``, its own
  ``schema_version``), present only where a weather feed runs.
* for a customer whose plan is time-of-use, the kWh per TOU period of the final
  days of its open cycles [tu] (schema 2): ``tou_days`` maps a day to its whole
  Wh per period (the plan's period order), stored as ``[first_day, [[Wh, ...] or
  null, ...]]``; see ``baselines.tou_days``. Schema 1 (before it existed) still
  reads: its days are priced with the plan's fallback split.

Dates are stored as proleptic ordinals (``date.toordinal()``).

>>> p = Profile.new("c1")
>>> Profile.from_dict(p.to_dict()) == p
True
>>> p.to_dict()["v"]
2
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, TypeAlias

from baselines.weather import Response

SCHEMA_VERSION = 2
# stored versions this code reads (1: before ``tou_days``; nothing else changed)
READABLE_VERSIONS = (1, 2)
# float("nan"), float("inf") and float("infinity") read these (any case, with a sign)
_NON_FINITE_TEXT = frozenset({"nan", "inf", "infinity"})
MAX_CYCLES = 36
# OpenDay.granularity_s of a whole-day total and of consumption spread from register reads
DAILY_GRANULARITY_S = 86400
REGISTER_GRANULARITY_S = 0


# The booked values of an open day's interval slots, newest first: (slot, kWh, older cells). A
# chain, not a list: the hot path adds a slot with one small tuple (a copied list would cost
# O(slots) per reading) and only a repeated slot walks it. A replaced value is shadowed by the new
# cell; the stored form is the values in slot order (``values_in_slot_order``).
SlotValues: TypeAlias = tuple[int, float, "SlotValues | None"]


def slot_value(chain: SlotValues | None, slot: int) -> float | None:
    """The booked value of ``slot`` (the newest cell for it), ``None`` if the chain has none.

    >>> slot_value((3, 0.5, (3, 0.2, (1, 0.1, None))), 3), slot_value((1, 0.1, None), 2)
    (0.5, None)
    """
    while chain is not None:
        s, v, chain = chain
        if s == slot:
            return v
    return None


def values_in_slot_order(chain: SlotValues | None) -> list[float]:
    """One value per slot (the newest), in slot order: the stored form.

    >>> values_in_slot_order((3, 0.5, (0, 0.2, (3, 0.1, None))))
    [0.2, 0.5]
    """
    seen: dict[int, float] = {}
    while chain is not None:
        s, v, chain = chain
        seen.setdefault(s, v)
    return [seen[s] for s in sorted(seen)]


def chain_of(mask: int, values: list[float]) -> SlotValues | None:
    """The chain of stored values, one per set bit of ``mask`` in slot order.

    >>> chain_of(0b1010, [0.1, 0.3])
    (3, 0.3, (1, 0.1, None))
    """
    slots = [i for i in range(mask.bit_length()) if mask >> i & 1]
    if len(slots) != len(values):
        raise ValueError(f"{len(values)} slot values for {len(slots)} slots")
    chain: SlotValues | None = None
    for s, v in zip(slots, values, strict=True):
        chain = (s, v, chain)
    return chain


class OpenDay(NamedTuple):
    """Accumulator of one day still inside the late window.

    ``granularity_s`` is the interval length of its readings (86400 for a daily
    total, 0 for consumption spread from register reads); ``slots_seen`` has
    bit ``i`` set for the interval slot ``i`` of the day; ``estimated`` maps
    the slots whose value is an estimate (``None`` when there are none);
    ``values`` holds the booked value of each seen slot (so that a second,
    different value for a slot is recognised) as a ``SlotValues`` chain,
    ``None`` for a daily total, register consumption, and days stored before
    it was kept.

    >>> slot_value(OpenDay(0.7, 3600.0, 0b101, 1800, None, 0.0, (2, 0.4, (0, 0.3, None))).values, 2)
    0.4
    """

    kwh: float
    covered_s: float
    slots_seen: int
    granularity_s: int
    estimated: dict[int, float] | None
    night_kwh: float
    values: SlotValues | None = None


class OpenCycle(NamedTuple):
    """A billing cycle with days still open; ``kwh`` and ``covered_days`` count its final days only."""

    start: int
    end: int
    kwh: float
    covered_days: float


class ClosedCycleT(NamedTuple):
    """A closed billing cycle (``T``: the profile's tuple, not ``meterwatch.contracts.ClosedCycle``)."""

    start: int
    end: int
    kwh: float
    coverage: float


# the value kept in ``Profile.same_period_cache``: (key, (kWh, coverage) or None)
SamePeriodCache = tuple[tuple[int, int, int, ClosedCycleT | None], tuple[float, float] | None]


class Profile:
    """One customer's state. Treat as a value: ``Engine.process`` clones before changing it."""

    __slots__ = (
        "baseline_days",
        "baseline_mad",
        "baseline_median",
        "booked_kwh",
        "calendar_key",
        "closed_cycles",
        "customer_id",
        "evaluated_day",
        "final_days",
        "final_start",
        "fired",
        "high_flags",
        "latest_ts",
        "low_flags",
        "money_cache",
        "money_epoch",
        "newest_day",
        "night_share",
        "open_cycles",
        "open_days",
        "p95_day",
        "peak_kwh",
        "plans",
        "reasons",
        "register_estimate",
        "register_read",
        "same_period_cache",
        "schema_version",
        "special_flags",
        "streaks",
        "tier_mark",
        "tou_days",
        "weather",
        "weekday_factors",
    )

    def __init__(self, customer_id: str) -> None:
        self.schema_version = SCHEMA_VERSION
        self.customer_id = customer_id
        self.newest_day: int | None = None  # the newest local day with data
        self.latest_ts: float | None = None  # the latest reading time (epoch s) applied
        self.evaluated_day: int | None = None  # the last day the rules were evaluated as of
        self.open_days: dict[int, OpenDay] = {}
        self.open_cycles: list[OpenCycle] = []
        self.closed_cycles: list[ClosedCycleT] = []
        self.final_start: int | None = None  # the day of final_days[0]
        self.final_days: list[float | None] = []
        self.high_flags = 0
        self.low_flags = 0
        self.special_flags = 0  # ring days out of the statistics: holidays, away, a previous occupant's
        self.calendar_key: str | None = None  # the calendar special_flags derive from (special_days)
        self.baseline_median: float | None = None
        self.baseline_mad: float | None = None
        self.baseline_days = 0
        self.p95_day: float | None = None
        self.weekday_factors: tuple[float, ...] = (1.0,) * 7  # Monday first
        self.night_share: float | None = None
        self.register_read: tuple[float, float] | None = None  # last actual read (epoch s, kWh)
        self.register_estimate: tuple[float, float] | None = None  # a newer estimated read
        self.fired: dict[str, int] = {}  # rule (and moderation keys, see baselines.alerts) -> cycle start
        self.streaks: dict[str, int] = {}  # rule -> consecutive evaluations its condition held
        self.reasons: dict[str, list[Any]] = {}  # rule -> [code, numbers] why it could not be evaluated
        # transient cache of the same-period figures (not serialised; see cycle_book.same_period_figures)
        self.same_period_cache: SamePeriodCache | None = None
        # the tariff plans in force: (from_day, plan_id or ""), oldest first (see baselines.billing)
        self.plans: list[tuple[int, str]] = []
        # transient cache of the bill figures, keyed by everything they depend on (so clones may
        # share it); not serialised; reset with same_period_cache (see baselines.billing)
        self.money_cache: dict[str, Any] | None = None
        # TOU customers: Wh per period of the open cycles' final days (copy on write: clones share it)
        self.tou_days: dict[int, tuple[int, ...]] = {}
        # transient running bound for tier_crossing's cheap exit (not serialised; see
        # baselines.rules.tier_crossing): kWh the fold applied since the rule's mark (inf after
        # anything that is not a plain addition: a replaced estimate, a register read), the largest
        # open-day kWh the fold wrote since then, and the mark itself
        self.booked_kwh = 0.0
        self.peak_kwh = 0.0
        self.tier_mark: Any = None
        # the learned temperature response (baselines.weather; immutable, clones share it); None
        # without a weather feed
        self.weather: Response | None = None
        # transient: bumped wherever the closed cycles or the plan history change (the mark above
        # holds while it is unchanged, so its check need not look at either)
        self.money_epoch = 0

    @classmethod
    def new(cls, customer_id: str) -> Profile:
        """An empty profile.

        >>> Profile.new("c1").customer_id
        'c1'
        """
        return cls(customer_id)

    def clone(self) -> Profile:
        """A copy that shares nothing mutable with ``self``.

        >>> p = Profile.new("c1"); q = p.clone(); q.fired["x"] = 1; p.fired
        {}
        """
        q = Profile.__new__(Profile)
        for name in Profile.__slots__:
            object.__setattr__(q, name, getattr(self, name))
        q.open_days = dict(self.open_days)
        q.open_cycles = list(self.open_cycles)
        q.closed_cycles = list(self.closed_cycles)
        q.final_days = list(self.final_days)
        q.fired = dict(self.fired)
        q.streaks = dict(self.streaks)
        q.reasons = dict(self.reasons)
        q.plans = list(self.plans)
        return q

    # --- derived -----------------------------------------------------------------
    def day_value(self, day: int) -> tuple[float, float] | None:
        """(kWh, coverage-or-seconds marker) of a day: open days first, then the ring.

        Returns ``(kwh, -1.0)`` for ring days (already final, coverage ok) and
        ``(kwh, covered_s)`` for open days; ``None`` if unknown.

        >>> Profile.new("c").day_value(1) is None
        True
        """
        acc = self.open_days.get(day)
        if acc is not None:
            return acc.kwh, acc.covered_s
        if self.final_start is not None:
            i = day - self.final_start
            if 0 <= i < len(self.final_days):
                v = self.final_days[i]
                if v is not None:
                    return v, -1.0
        return None

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data with short keys; exact (the engine rounds at the source).

        >>> import json
        >>> len(json.dumps(Profile.new("c1").to_dict())) < 200
        True
        """
        d: dict[str, Any] = {"v": self.schema_version, "id": self.customer_id}
        if self.newest_day is not None:
            d["n"] = self.newest_day
        if self.latest_ts is not None:
            d["t"] = self.latest_ts
        if self.evaluated_day is not None:
            d["e"] = self.evaluated_day
        if self.open_days:
            d["o"] = [
                [
                    k,
                    a.kwh,
                    a.covered_s,
                    format(a.slots_seen, "x"),
                    a.granularity_s,
                    {str(s): x for s, x in a.estimated.items()} if a.estimated else 0,
                    a.night_kwh,
                    *(() if a.values is None else (values_in_slot_order(a.values),)),
                ]
                for k, a in sorted(self.open_days.items())
            ]
        if self.open_cycles:
            d["co"] = [[c.start, c.end, c.kwh, c.covered_days] for c in self.open_cycles]
        if self.closed_cycles:
            d["cy"] = [[c.start, c.end, c.kwh, c.coverage] for c in self.closed_cycles]
        if self.final_start is not None:
            d["ds"] = self.final_start
            d["dy"] = list(self.final_days)
        if self.high_flags:
            d["fh"] = format(self.high_flags, "x")
        if self.low_flags:
            d["fl"] = format(self.low_flags, "x")
        if self.special_flags:
            d["fx"] = format(self.special_flags, "x")
        if self.calendar_key is not None:
            d["ck"] = self.calendar_key
        if self.baseline_median is not None:
            d["bm"] = [self.baseline_median, self.baseline_mad, self.baseline_days, self.p95_day]
        if any(w != 1.0 for w in self.weekday_factors):
            d["wf"] = list(self.weekday_factors)
        if self.night_share is not None:
            d["ns"] = self.night_share
        if self.register_read is not None:
            d["rg"] = list(self.register_read)
        if self.register_estimate is not None:
            d["re"] = list(self.register_estimate)
        if self.fired:
            d["f"] = dict(self.fired)
        if self.streaks:
            d["s"] = dict(self.streaks)
        if self.reasons:
            d["r"] = dict(self.reasons)
        if self.plans:
            d["tp"] = [[day, plan] for day, plan in self.plans]
        if self.tou_days:
            first = min(self.tou_days)
            get = self.tou_days.get
            run = [get(day) for day in range(first, max(self.tou_days) + 1)]
            d["tu"] = [first, [None if x is None else list(x) for x in run]]
        if self.weather is not None:
            d["wx"] = self.weather.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Inverse of ``to_dict``; raises ``ValueError`` on an unknown schema version or a non-finite number.

        >>> Profile.from_dict({"v": 99, "id": "c"})
        Traceback (most recent call last):
        ...
        ValueError: unsupported profile schema_version 99 (this code reads 1, 2)
        >>> Profile.from_dict({"v": 1, "id": "c", "co": [[1, 31, float("inf"), 1.0]]})
        Traceback (most recent call last):
        ...
        ValueError: profile field 'co' holds a non-finite number: inf
        """
        v = d.get("v")
        if v not in READABLE_VERSIONS or type(v) is not int:
            readable = ", ".join(map(str, READABLE_VERSIONS))
            raise ValueError(f"unsupported profile schema_version {v} (this code reads {readable})")
        _check_finite(d)
        try:
            return cls._read(d)
        except (TypeError, AttributeError, IndexError, KeyError) as e:  # e.g. null where a number belongs
            raise ValueError(f"malformed profile value: {type(e).__name__}: {e}") from e

    @classmethod
    def _read(cls, d: dict[str, Any]) -> Profile:
        p = cls(str(d["id"]))
        p.newest_day = d.get("n")
        p.latest_ts = None if d.get("t") is None else float(d["t"])
        p.evaluated_day = d.get("e")
        for k, kwh, cov, mask, gran, est, night, *vals in d.get("o", []):
            p.open_days[int(k)] = OpenDay(
                float(kwh),
                float(cov),
                int(mask, 16),
                int(gran),
                {int(s): float(x) for s, x in est.items()} if est else None,
                float(night),
                chain_of(int(mask, 16), [float(x) for x in vals[0]]) if vals else None,
            )
        p.open_cycles = [OpenCycle(int(a), int(b), float(c), float(e)) for a, b, c, e in d.get("co", [])]
        p.closed_cycles = [ClosedCycleT(int(a), int(b), float(c), float(e)) for a, b, c, e in d.get("cy", [])]
        if "ds" in d:
            p.final_start = int(d["ds"])
            p.final_days = [None if x is None else float(x) for x in d["dy"]]
        p.high_flags = int(d.get("fh", "0"), 16)
        p.low_flags = int(d.get("fl", "0"), 16)
        p.special_flags = int(d.get("fx", "0"), 16)
        if "ck" in d:
            p.calendar_key = str(d["ck"])
        if "bm" in d:
            med, mad, n, hi = d["bm"]
            p.baseline_median, p.baseline_mad, p.baseline_days = (
                float(med),
                (None if mad is None else float(mad)),
                int(n),
            )
            p.p95_day = None if hi is None else float(hi)
        if "wf" in d:
            p.weekday_factors = tuple(float(w) for w in d["wf"])
        if "ns" in d:
            p.night_share = float(d["ns"])
        if "rg" in d:
            p.register_read = (float(d["rg"][0]), float(d["rg"][1]))
        if "re" in d:
            p.register_estimate = (float(d["re"][0]), float(d["re"][1]))
        p.fired = {str(k): int(x) for k, x in d.get("f", {}).items()}
        p.streaks = {str(k): int(x) for k, x in d.get("s", {}).items()}
        p.reasons = {str(k): list(x) for k, x in d.get("r", {}).items()}
        p.plans = [(int(day), str(plan)) for day, plan in d.get("tp", ())]
        if "tu" in d:  # schema 2; a schema 1 value has none (migration: its days take the fallback)
            first, run = d["tu"]
            p.tou_days = {
                int(first) + i: tuple(int(w) for w in x) for i, x in enumerate(run) if x is not None
            }
        if "wx" in d:  # absent: no weather feed (the key needs no schema bump: older code never wrote it)
            p.weather = Response.from_dict(d["wx"])
        return p

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Profile({self.customer_id!r}, newest={self.newest_day}, cycles={len(self.closed_cycles)})"


def finite(x: float) -> bool:
    """True for a finite float.

    >>> finite(1.0), finite(float("nan"))
    (True, False)
    """
    return math.isfinite(x)


def _check_finite(d: dict[str, Any]) -> None:
    """Refuse a stored value with a non-finite number (or a string that reads as one) anywhere in it."""
    for key, value in d.items():
        stack: list[Any] = [value]
        while stack:
            x = stack.pop()
            if isinstance(x, float) and not math.isfinite(x):
                raise ValueError(f"profile field {key!r} holds a non-finite number: {x!r}")
            if isinstance(x, list | tuple):
                stack.extend(x)
            elif isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, str) and key != "id" and x.strip().lower().lstrip("+-") in _NON_FINITE_TEXT:
                raise ValueError(f"profile field {key!r} holds a non-finite number: {x!r}")
