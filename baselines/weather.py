"""Weather: daily temperatures per region and each household's learned temperature response.

A household that heats (or cools) with electricity uses more on cold (hot) days; a cold
snap is then expected use, not a surge. This module holds the pure parts:

* :class:`Temperatures`: the daily mean temperature (deg C) per region and day (proleptic
  ordinal). A customer's series is that of its ``region`` (``CustomerConfig.region``), else
  the default series (region :data:`ANY_REGION`, ``*``), else none.
* heating and cooling degree days of a daily mean temperature, with the bases of UK
  degree-day practice: :data:`HEATING_BASE_C` 15.5 C (the CIBSE / Met Office base of
  heating degree days) and :data:`COOLING_BASE_C` 22 C.
* :class:`Response`: the household's daily kWh as ``a + b x HDD + c x CDD``, learned online
  by :func:`update`, a pure fold over (day, kWh, HDD, CDD): a recursive least-squares fit
  with slow forgetting (:data:`FORGET`, memory about 200 days), Huber-weighted residuals
  (a day far off the fit counts as if it were :data:`HUBER_K` robust scales off, so a
  party or a holiday barely moves the slopes) and a bounded covariance (no wind-up over a
  summer without heating). It is a small versioned value (``to_dict``/``from_dict``).
* :func:`sufficiency`: whether the fit may be used (enough days, enough spread of HDD),
  else a named reason with its numbers (``baselines.weather.too_few_days``,
  ``baselines.weather.no_temperature_spread``).
* :func:`expected_adjustment`: the kWh/day of a day's use explained by its temperature
  relative to the baseline period's (slopes below zero count as zero: the weather explains
  more use in the cold, never less).

The profile side (which ring days the fit absorbs, the baseline period's HDD) is in
``baselines.weather_profile``. Without a weather feed nothing here runs: the profile holds
no response and every rule behaves exactly as before.

>>> hdd(10.0), cdd(10.0), hdd(25.0), cdd(25.0)
(5.5, 0.0, 0.0, 3.0)
>>> r = Response.new()
>>> for i in range(60):
...     h = float(i % 12)
...     r = update(r, 700_000 + i, 6.0 + 0.8 * h, h, 0.0)
>>> sufficiency(r) is None, round(r.heating_slope, 3)
(True, 0.8)
>>> round(expected_adjustment(r, 10.0, 0.0, 4.0), 3)   # 6 HDD colder than the baseline weeks
4.8
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: base temperature of heating degree days (UK practice: 15.5 C)
HEATING_BASE_C = 15.5
#: base temperature of cooling degree days (UK practice: 22 C)
COOLING_BASE_C = 22.0
#: the region of the default series: the temperatures of every customer whose region has none
ANY_REGION = "*"
#: the stored version of :class:`Response`
RESPONSE_SCHEMA_VERSION = 1
#: the fit's forgetting factor per day (memory about 1 / (1 - FORGET) = 200 days)
FORGET = 0.995
#: residuals beyond this many robust scales are down-weighted (Huber)
HUBER_K = 2.0
#: the first days are fitted unweighted (no residual scale yet)
WARMUP_DAYS = 14
#: the residual scale follows |residual| (clipped at SCALE_CLIP scales) with this weight
SCALE_WEIGHT = 0.05
SCALE_CLIP = 3.0
#: the residual scale counts as at least this (kWh): weeks of identical days (a vacant home's
#: zeros) must not make every later day infinitely far off
MIN_SCALE_KWH = 0.05
#: the fit's prior covariance (intercept, HDD slope, CDD slope): practically uninformative
PRIOR_VARIANCE = (1.0e4, 1.0e2, 1.0e2)
PRIOR_TRACE = sum(PRIOR_VARIANCE)
#: the fit is used from this many days on ...
MIN_DAYS = 42
#: ... when the HDD of those days spread at least this much (standard deviation, degree days)
MIN_HDD_SD = 2.0
#: the CDD slope is used only when the CDD spread this much (else it counts as zero)
MIN_CDD_SD = 1.0


def hdd(temperature_c: float) -> float:
    """Heating degree days of a day with this mean temperature (base 15.5 C).

    >>> hdd(0.0), hdd(15.5), hdd(20.0)
    (15.5, 0.0, 0.0)
    """
    return max(0.0, HEATING_BASE_C - temperature_c)


def cdd(temperature_c: float) -> float:
    """Cooling degree days of a day with this mean temperature (base 22 C).

    >>> cdd(21.0), cdd(24.5)
    (0.0, 2.5)
    """
    return max(0.0, temperature_c - COOLING_BASE_C)


class Temperatures:
    """Daily mean temperatures (deg C) per region and day (proleptic ordinal).

    >>> t = Temperatures({"GB-ENG": {738900: 3.0}, "*": {738900: 8.0}})
    >>> t.series("GB-ENG")[738900], t.series(None)[738900], t.series("CN")[738900]
    (3.0, 8.0, 8.0)
    >>> Temperatures({}).series("GB-ENG") is None, len(Temperatures({}))
    (True, 0)
    """

    __slots__ = ("_by_region",)

    def __init__(self, by_region: Mapping[str, Mapping[int, float]]) -> None:
        self._by_region = {r: dict(days) for r, days in by_region.items() if days}

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, float]]) -> Temperatures:
        """From ``(region, day ordinal, mean temperature C)`` rows (a later row for a day wins).

        >>> Temperatures.from_rows([("*", 738900, 4.0), ("*", 738901, 5.0)]).series(None)
        {738900: 4.0, 738901: 5.0}
        """
        by: dict[str, dict[int, float]] = {}
        for region, day, t in rows:
            if not math.isfinite(t):
                raise ValueError(f"temperature of {region!r} on day {day} is not a number: {t}")
            by.setdefault(region, {})[int(day)] = float(t)
        return cls(by)

    def apply(self, region: str, day: int, temperature_c: float) -> None:
        """Record (or correct) one day's temperature of a region (a stream follower feeds it).

        >>> t = Temperatures({}); t.apply("*", 738900, 2.5); t.apply("*", 738900, 3.0); t.series(None)
        {738900: 3.0}
        """
        if not math.isfinite(temperature_c):
            raise ValueError(f"temperature of {region!r} on day {day} is not a number: {temperature_c}")
        self._by_region.setdefault(region, {})[int(day)] = float(temperature_c)

    def series(self, region: str | None) -> Mapping[int, float] | None:
        """The region's daily temperatures, else the default series (region ``*``), else None."""
        if region is not None:
            got = self._by_region.get(region)
            if got is not None:
                return got
        return self._by_region.get(ANY_REGION)

    def regions(self) -> list[str]:
        """The regions with temperatures (``*``: the default series).

        >>> Temperatures({"b": {1: 0.0}, "a": {1: 0.0}}).regions()
        ['a', 'b']
        """
        return sorted(self._by_region)

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_region.values())


@dataclass(frozen=True, slots=True)
class Response:
    """A household's learned temperature response (see the module docstring).

    ``theta``: intercept (kWh/day), kWh per HDD, kWh per CDD; ``cov``: the fit's
    covariance, upper triangle row by row (6 numbers); ``days``: days absorbed;
    ``last_day``: the newest day absorbed; ``scale``: the robust residual scale (kWh);
    ``hdd_moments`` / ``cdd_moments``: forgetting-weighted (weight, mean, sum of squared
    deviations) of the absorbed days' HDD / CDD.

    >>> r = update(Response.new(), 700_000, 5.0, 3.0, 0.0)
    >>> Response.from_dict(r.to_dict()) == r, r.to_dict()["v"]
    (True, 1)
    """

    theta: tuple[float, float, float]
    cov: tuple[float, float, float, float, float, float]
    days: int
    last_day: int | None
    scale: float | None
    hdd_moments: tuple[float, float, float]
    cdd_moments: tuple[float, float, float]

    @classmethod
    def new(cls) -> Response:
        """The response before any day: no slope, the prior covariance.

        >>> Response.new().days, Response.new().heating_slope
        (0, 0.0)
        """
        a, b, c = PRIOR_VARIANCE
        return cls((0.0, 0.0, 0.0), (a, 0.0, 0.0, b, 0.0, c), 0, None, None, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))

    @property
    def heating_slope(self) -> float:
        """kWh per heating degree day (as fitted; may be below zero)."""
        return self.theta[1]

    @property
    def cooling_slope(self) -> float:
        """kWh per cooling degree day (as fitted; may be below zero)."""
        return self.theta[2]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (key ``v``: :data:`RESPONSE_SCHEMA_VERSION`)."""
        return {
            "v": RESPONSE_SCHEMA_VERSION,
            "th": list(self.theta),
            "p": list(self.cov),
            "n": self.days,
            "d": self.last_day,
            "s": self.scale,
            "mh": list(self.hdd_moments),
            "mc": list(self.cdd_moments),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Response:
        """Inverse of ``to_dict``; ``ValueError`` on another version or a malformed value.

        >>> Response.from_dict({"v": 9})
        Traceback (most recent call last):
        ...
        ValueError: unsupported weather response schema_version 9 (this code reads 1)
        >>> bad = {**Response.new().to_dict(), "th": [0.0, float("nan"), 0.0]}
        >>> Response.from_dict(bad)
        Traceback (most recent call last):
        ...
        ValueError: malformed weather response: ValueError: a non-finite number
        """
        v = d.get("v")
        if v != RESPONSE_SCHEMA_VERSION or type(v) is not int:
            raise ValueError(
                f"unsupported weather response schema_version {v} (this code reads {RESPONSE_SCHEMA_VERSION})"
            )
        try:
            th = tuple(float(x) for x in d["th"])
            cov = tuple(float(x) for x in d["p"])
            mh = tuple(float(x) for x in d["mh"])
            mc = tuple(float(x) for x in d["mc"])
            if len(th) != 3 or len(cov) != 6 or len(mh) != 3 or len(mc) != 3:
                raise ValueError("wrong length")
            scale = None if d["s"] is None else float(d["s"])
            if not all(math.isfinite(x) for x in (*th, *cov, *mh, *mc, scale or 0.0)):
                raise ValueError("a non-finite number")
            last = d["d"]
            return cls(
                (th[0], th[1], th[2]),
                (cov[0], cov[1], cov[2], cov[3], cov[4], cov[5]),
                int(d["n"]),
                None if last is None else int(last),
                scale,
                (mh[0], mh[1], mh[2]),
                (mc[0], mc[1], mc[2]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed weather response: {type(e).__name__}: {e}") from e


def _moments(m: tuple[float, float, float], x: float) -> tuple[float, float, float]:
    """Forgetting-weighted Welford step: (weight, mean, sum of squared deviations) with ``x`` added."""
    w, mean, m2 = m
    w = FORGET * w + 1.0
    m2 *= FORGET
    delta = x - mean
    mean += delta / w
    return (w, mean, m2 + delta * (x - mean))


def spread(m: tuple[float, float, float]) -> float:
    """The standard deviation of forgetting-weighted moments (0.0 without two days).

    >>> spread((0.0, 0.0, 0.0)), round(spread((4.0, 2.0, 12.0)), 3)
    (0.0, 2.0)
    """
    w, _, m2 = m
    if w <= 1.0:
        return 0.0
    return math.sqrt(max(0.0, m2) / (w - 1.0))


def update(state: Response, day: int, kwh: float, hdd_: float, cdd_: float) -> Response:
    """``state`` with one more day absorbed (a pure fold: ``state`` is not changed).

    >>> r = update(Response.new(), 700_000, 5.0, 2.0, 0.0)
    >>> r.days, r.last_day, Response.new().days
    (1, 700000, 0)
    """
    h, c = hdd_, cdd_
    t0, t1, t2 = state.theta
    r = kwh - (t0 + t1 * h + t2 * c)
    scale = state.scale
    w = 1.0
    if scale is not None and state.days >= WARMUP_DAYS and abs(r) > HUBER_K * max(scale, MIN_SCALE_KWH):
        w = HUBER_K * max(scale, MIN_SCALE_KWH) / abs(r)  # Huber: a far day counts as HUBER_K scales off
    # weighted recursive least squares with forgetting, x = (1, h, c), P symmetric (unrolled: hot)
    a, b, e, d, g, f = state.cov  # P = [[a, b, e], [b, d, g], [e, g, f]]
    p0, p1, p2 = a + b * h + e * c, b + d * h + g * c, e + g * h + f * c  # P x
    denom = FORGET / w + p0 + p1 * h + p2 * c
    k0, k1, k2 = p0 / denom, p1 / denom, p2 / denom
    theta = (t0 + k0 * r, t1 + k1 * r, t2 + k2 * r)
    lam = FORGET
    cov = (
        (a - k0 * p0) / lam,
        (b - k0 * p1) / lam,
        (e - k0 * p2) / lam,
        (d - k1 * p1) / lam,
        (g - k1 * p2) / lam,
        (f - k2 * p2) / lam,
    )
    tr = cov[0] + cov[3] + cov[5]
    cap = PRIOR_TRACE
    if tr > cap:  # no wind-up: days without HDD spread must not make the fit forget all it learned
        m = cap / tr
        cov = (cov[0] * m, cov[1] * m, cov[2] * m, cov[3] * m, cov[4] * m, cov[5] * m)
    ar = abs(r)
    if scale is None:
        scale = ar
    else:
        scale = (1.0 - SCALE_WEIGHT) * scale + SCALE_WEIGHT * min(ar, SCALE_CLIP * max(scale, MIN_SCALE_KWH))
    return Response(
        theta,
        cov,
        state.days + 1,
        day,
        scale,
        _moments(state.hdd_moments, hdd_),
        _moments(state.cdd_moments, cdd_),
    )


def sufficiency(state: Response | None) -> tuple[str, dict[str, float | int]] | None:
    """None if the fit may be used, else the named reason and its numbers.

    >>> sufficiency(Response.new())
    ('baselines.weather.too_few_days', {'days': 0, 'needed': 42})
    >>> r = Response.new()
    >>> for i in range(50):
    ...     r = update(r, 700_000 + i, 5.0, 1.0, 0.0)
    >>> sufficiency(r)
    ('baselines.weather.no_temperature_spread', {'hdd_sd': 0.0, 'needed': 2.0})
    """
    if state is None or state.days < MIN_DAYS:
        n = 0 if state is None else state.days
        return "baselines.weather.too_few_days", {"days": n, "needed": MIN_DAYS}
    sd = spread(state.hdd_moments)
    if sd < MIN_HDD_SD:
        return "baselines.weather.no_temperature_spread", {"hdd_sd": round(sd, 2), "needed": MIN_HDD_SD}
    return None


def expected_adjustment(
    state: Response | None, hdd_: float, cdd_: float, baseline_hdd: float, baseline_cdd: float = 0.0
) -> float | None:
    """kWh/day explained by a day's (or window's mean) HDD/CDD relative to the baseline period's;
    None when the response is not sufficient (:func:`sufficiency`). Negative slopes count as zero;
    the CDD slope counts only with enough CDD spread.

    >>> expected_adjustment(None, 10.0, 0.0, 2.0) is None
    True
    """
    if sufficiency(state) is not None:
        return None
    assert state is not None
    adj = max(0.0, state.heating_slope) * (hdd_ - baseline_hdd)
    if spread(state.cdd_moments) >= MIN_CDD_SD:
        adj += max(0.0, state.cooling_slope) * (cdd_ - baseline_cdd)
    return adj
