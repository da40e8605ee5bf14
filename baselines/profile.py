"""The per-customer habit profile: versioned, compact, JSON-serialisable state.

The engine owns the logic; this module owns the shape and its (de)serialisation.
``Profile.to_dict()`` gives plain JSON data (short keys, rounded floats) that
the worker stores in a RocksDB table; ``Profile.from_dict`` reads it back and
refuses an unknown ``schema_version``.

State kept per customer:

* ``open``: the days still inside the late window (default 7 days behind the
  newest day seen), each as ``DayAcc``: kWh, seconds covered, a bitmask of the
  interval slots seen (so a redelivered reading counts once), estimated slots
  that a later actual read replaces, and night-time kWh.
* ``copen``: billing cycles with days still open: ``(start, end_excl, kWh of
  final days, covered days)``; the last one is the running cycle.
* ``cycles``: the last 36 closed cycles ``(start, end_excl, kWh, coverage)``.
* ``days`` from ``dstart``: the last ``ring_days`` final daily totals (``None``:
  missing or partial day) with ``flags_hi``/``flags_lo`` bitmasks of days that
  were far above/below the baseline, excluded from it so that the surge the
  baseline should detect does not drag it up.
* cached baseline statistics (median, MAD, count, the 95th-percentile day of
  the ring with spikes included, weekday factors, night share),
  the register state, and which rule fired in which cycle.

Dates are stored as proleptic ordinals (``date.toordinal()``).

>>> p = Profile.new("c1")
>>> Profile.from_dict(p.to_dict()) == p
True
>>> p.to_dict()["v"]
1
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

SCHEMA_VERSION = 1
MAX_CYCLES = 36


class DayAcc(NamedTuple):
    """Accumulator of one open day."""

    kwh: float
    covered_s: float
    mask: int
    gran: int
    est: dict[int, float] | None
    night_kwh: float


class CycleAcc(NamedTuple):
    start: int
    end: int
    kwh: float
    cov_days: float


class ClosedCycleT(NamedTuple):
    start: int
    end: int
    kwh: float
    coverage: float


def _r(x: float, nd: int = 4) -> float:
    return round(x, nd)


def _opt(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


class Profile:
    """One customer's state. Treat as a value: the engine clones before changing."""

    __slots__ = (
        "base_hi",
        "base_mad",
        "base_med",
        "base_n",
        "copen",
        "customer_id",
        "cycles",
        "days",
        "dstart",
        "eval_day",
        "fired",
        "flags_hi",
        "flags_lo",
        "last_ts",
        "newest",
        "night_share",
        "open",
        "reasons",
        "reg",
        "reg_est",
        "schema_version",
        "spc",
        "streak",
        "wf",
    )

    def __init__(self, customer_id: str) -> None:
        self.schema_version = SCHEMA_VERSION
        self.customer_id = customer_id
        self.newest: int | None = None
        self.last_ts: float | None = None
        self.eval_day: int | None = None
        self.open: dict[int, DayAcc] = {}
        self.copen: list[CycleAcc] = []
        self.cycles: list[ClosedCycleT] = []
        self.dstart: int | None = None
        self.days: list[float | None] = []
        self.flags_hi = 0
        self.flags_lo = 0
        self.base_med: float | None = None
        self.base_mad: float | None = None
        self.base_n = 0
        self.base_hi: float | None = None
        self.wf: tuple[float, ...] = (1.0,) * 7
        self.night_share: float | None = None
        self.reg: tuple[float, float] | None = None
        self.reg_est: tuple[float, float] | None = None
        self.fired: dict[str, int] = {}
        self.streak: dict[str, int] = {}
        self.reasons: dict[str, list[Any]] = {}
        # transient cache of the same-period figures (not serialised)
        self.spc: tuple[Any, tuple[float, float] | None] | None = None

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
        q.open = dict(self.open)
        q.copen = list(self.copen)
        q.cycles = list(self.cycles)
        q.days = list(self.days)
        q.fired = dict(self.fired)
        q.streak = dict(self.streak)
        q.reasons = dict(self.reasons)
        return q

    # --- derived -----------------------------------------------------------------
    def day_value(self, day: int) -> tuple[float, float] | None:
        """(kWh, coverage-or-seconds marker) of a day: open days first, then the ring.

        Returns ``(kwh, -1.0)`` for ring days (already final, coverage ok) and
        ``(kwh, covered_s)`` for open days; ``None`` if unknown.

        >>> Profile.new("c").day_value(1) is None
        True
        """
        acc = self.open.get(day)
        if acc is not None:
            return acc.kwh, acc.covered_s
        if self.dstart is not None:
            i = day - self.dstart
            if 0 <= i < len(self.days):
                v = self.days[i]
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
        if self.newest is not None:
            d["n"] = self.newest
        if self.last_ts is not None:
            d["t"] = self.last_ts
        if self.eval_day is not None:
            d["e"] = self.eval_day
        if self.open:
            d["o"] = [
                [
                    k,
                    a.kwh,
                    a.covered_s,
                    format(a.mask, "x"),
                    a.gran,
                    {str(s): x for s, x in a.est.items()} if a.est else 0,
                    a.night_kwh,
                ]
                for k, a in sorted(self.open.items())
            ]
        if self.copen:
            d["co"] = [[c.start, c.end, c.kwh, c.cov_days] for c in self.copen]
        if self.cycles:
            d["cy"] = [[c.start, c.end, c.kwh, c.coverage] for c in self.cycles]
        if self.dstart is not None:
            d["ds"] = self.dstart
            d["dy"] = list(self.days)
        if self.flags_hi:
            d["fh"] = format(self.flags_hi, "x")
        if self.flags_lo:
            d["fl"] = format(self.flags_lo, "x")
        if self.base_med is not None:
            d["bm"] = [self.base_med, self.base_mad, self.base_n, self.base_hi]
        if any(w != 1.0 for w in self.wf):
            d["wf"] = list(self.wf)
        if self.night_share is not None:
            d["ns"] = self.night_share
        if self.reg is not None:
            d["rg"] = list(self.reg)
        if self.reg_est is not None:
            d["re"] = list(self.reg_est)
        if self.fired:
            d["f"] = dict(self.fired)
        if self.streak:
            d["s"] = dict(self.streak)
        if self.reasons:
            d["r"] = dict(self.reasons)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Inverse of ``to_dict``; raises ``ValueError`` on an unknown schema version.

        >>> Profile.from_dict({"v": 99, "id": "c"})
        Traceback (most recent call last):
        ...
        ValueError: unsupported profile schema_version 99 (this code reads 1)
        """
        v = d.get("v")
        if v != SCHEMA_VERSION:
            raise ValueError(f"unsupported profile schema_version {v} (this code reads {SCHEMA_VERSION})")
        p = cls(str(d["id"]))
        p.newest = d.get("n")
        p.last_ts = d.get("t")
        p.eval_day = d.get("e")
        for k, kwh, cov, mask, gran, est, night in d.get("o", []):
            p.open[int(k)] = DayAcc(
                float(kwh),
                float(cov),
                int(mask, 16),
                int(gran),
                {int(s): float(x) for s, x in est.items()} if est else None,
                float(night),
            )
        p.copen = [CycleAcc(int(a), int(b), float(c), float(e)) for a, b, c, e in d.get("co", [])]
        p.cycles = [ClosedCycleT(int(a), int(b), float(c), float(e)) for a, b, c, e in d.get("cy", [])]
        if "ds" in d:
            p.dstart = int(d["ds"])
            p.days = [None if x is None else float(x) for x in d["dy"]]
        p.flags_hi = int(d.get("fh", "0"), 16)
        p.flags_lo = int(d.get("fl", "0"), 16)
        if "bm" in d:
            med, mad, n, hi = d["bm"]
            p.base_med, p.base_mad, p.base_n = float(med), (None if mad is None else float(mad)), int(n)
            p.base_hi = None if hi is None else float(hi)
        if "wf" in d:
            p.wf = tuple(float(w) for w in d["wf"])
        if "ns" in d:
            p.night_share = float(d["ns"])
        if "rg" in d:
            p.reg = (float(d["rg"][0]), float(d["rg"][1]))
        if "re" in d:
            p.reg_est = (float(d["re"][0]), float(d["re"][1]))
        p.fired = {str(k): int(x) for k, x in d.get("f", {}).items()}
        p.streak = {str(k): int(x) for k, x in d.get("s", {}).items()}
        p.reasons = {str(k): list(x) for k, x in d.get("r", {}).items()}
        return p

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Profile({self.customer_id!r}, newest={self.newest}, cycles={len(self.cycles)})"


def finite(x: float) -> bool:
    """True for a finite float.

    >>> finite(1.0), finite(float("nan"))
    (True, False)
    """
    return math.isfinite(x)
