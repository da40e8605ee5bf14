"""The weather-confounded set of the London evaluation (issue #15 item 6): two report slices.

Both are evaluation-side labels drawn from the daily temperatures (the shared Dark Sky file, or
``--weather``), whether or not the rules run with a weather feed:

* **cold-snap surges**: injected surges whose onset falls in a cold snap: the mean temperature
  of the surge's first week (onset day and the 6 after) is at least ``COLD_DROP_C`` below the
  mean of the 30 days before the onset, and at most ``COLD_MAX_C`` (a heating-season week).
  Reported: customer-facing recall within 7 days and median delay per multiplier.
  ``eval_london.py --onset cold`` places every surge's onset on such a day on purpose
  (besides the habit condition of ``--onset habit``), so the slice is the whole surge set.
* **electric-heating homes**: untouched households whose daily use responds strongly to the
  cold: a least-squares fit ``kWh = a + b * HDD`` over the household's whole history (HDD base
  15.5 C, ``baselines.weather.hdd``), the relative slope ``b / max(a, MIN_BASE_KWH)`` (kWh per
  degree day per kWh of base use); labelled: households with at least ``MIN_FIT_DAYS`` days
  whose relative slope is in the top decile of the fitted households and at least
  ``MIN_REL_SLOPE``. Not the product's learned response. Reported: customer-facing alerts per
  100 of their customer-cycles (false alerts: nothing was injected in them).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from baselines.weather import HEATING_BASE_C

COLD_DROP_C = 3.0  # the onset week at least this much colder than the 30 days before
COLD_MAX_C = 10.0  # and at most this warm (heating season)
COLD_WEEK = 7
COLD_BEFORE = 30
MIN_FIT_DAYS = 180
MIN_HDD_SD = 2.0  # a household's days must spread in HDD to fit a slope
MIN_BASE_KWH = 0.5
TOP_SHARE = 0.10
MIN_REL_SLOPE = 0.02  # 2 % of the base use per degree day at least


def cold_snap_days(temps: Mapping[int, float]) -> set[int]:
    """The days (same keys as ``temps``) that start a cold-snap week (module docstring).

    A day needs all 7 days of its week and at least 20 of the 30 days before it.

    >>> t = {d: 12.0 for d in range(60)}
    >>> t.update({d: 4.0 for d in range(40, 47)})
    >>> sorted(cold_snap_days(t))  # weeks holding >= 4 of the 7 cold days (and 41-43: 3 of them)
    [36, 37, 38, 39, 40, 41, 42, 43]
    """
    out = set()
    for x in temps:
        week = [temps[y] for y in range(x, x + COLD_WEEK) if y in temps]
        if len(week) < COLD_WEEK:
            continue
        before = [temps[y] for y in range(x - COLD_BEFORE, x) if y in temps]
        if len(before) < 20:
            continue
        w = sum(week) / len(week)
        if w <= COLD_MAX_C and w <= sum(before) / len(before) - COLD_DROP_C:
            out.add(x)
    return out


def relative_hdd_slopes(
    ids: npt.NDArray[Any],
    days: npt.NDArray[np.int64],
    kwh: npt.NDArray[np.float64],
    temps: Mapping[int, float],
) -> dict[str, float]:
    """Per household, the least-squares HDD slope over its base use (``b / max(a, 0.5)``).

    Days without a temperature or a finite reading are left out; households with fewer than
    ``MIN_FIT_DAYS`` days or an HDD spread below ``MIN_HDD_SD`` get no slope.

    >>> t = {d: float(d % 20) for d in range(400)}
    >>> ids = np.array(["heat"] * 400 + ["flat"] * 400)
    >>> days = np.array(list(range(400)) * 2)
    >>> use = [5.0 + 0.5 * max(0.0, 15.5 - t[d]) for d in range(400)] + [5.0] * 400
    >>> s = relative_hdd_slopes(ids, days, np.array(use), t)
    >>> round(s["heat"], 3), round(s["flat"], 3)
    (0.1, 0.0)
    """
    tarr = np.array([temps.get(int(d), np.nan) for d in range(int(days.min()), int(days.max()) + 1)])
    t = tarr[days - int(days.min())]
    ok = np.isfinite(t) & np.isfinite(kwh)
    x = np.maximum(0.0, HEATING_BASE_C - t[ok])
    y = kwh[ok]
    names, inv = np.unique(ids[ok], return_inverse=True)
    n = np.bincount(inv).astype(float)
    sx, sy = np.bincount(inv, x), np.bincount(inv, y)
    sxx, sxy = np.bincount(inv, x * x), np.bincount(inv, x * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_x = sxx / n - (sx / n) ** 2
        b = (sxy / n - sx / n * sy / n) / var_x
        a = sy / n - b * sx / n
    out = {}
    for k, cid in enumerate(names.tolist()):
        if n[k] >= MIN_FIT_DAYS and var_x[k] >= MIN_HDD_SD**2:
            out[str(cid)] = float(b[k] / max(a[k], MIN_BASE_KWH))
    return out


def electric_heating(slopes: Mapping[str, float]) -> set[str]:
    """The households labelled electric-heating: the top decile of relative slopes, >= 0.02.

    >>> sorted(electric_heating({f"h{k}": k / 100 for k in range(20)}))
    ['h18', 'h19']
    >>> electric_heating({"a": 0.0, "b": 0.01})
    set()
    """
    if not slopes:
        return set()
    cut = max(float(np.quantile(list(slopes.values()), 1.0 - TOP_SHARE)), MIN_REL_SLOPE)
    return {c for c, s in slopes.items() if s >= cut}


class WeatherSets:
    """Pools both slices over the seeds of one evaluation (``add`` once per seed)."""

    def __init__(self, temps: Mapping[int, float], multipliers: Iterable[float]) -> None:
        self.temps = dict(temps)  # epoch day -> mean C
        self.cold = cold_snap_days(self.temps)
        self.mults = tuple(multipliers)
        self.n: dict[float, int] = defaultdict(int)
        self.hits7: dict[float, int] = defaultdict(int)
        self.delays: dict[float, list[int]] = defaultdict(list)
        self.heat_households = self.heat_cycles = self.heat_alerts = 0

    def add(
        self,
        raw: Any,
        truth: Mapping[str, Mapping[str, Any]],
        by_cust: Mapping[str, list[tuple[str, int, bool]]],
        cycles_by_customer: Mapping[str, int],
    ) -> None:
        """One seed: ``raw`` the table before injection, ``by_cust`` (rule, day, customer-facing)."""
        for cid, tr in truth.items():
            if tr["onset"] not in self.cold:
                continue
            m = tr["mult"]
            first = min(
                (
                    d - tr["onset"]
                    for _, d, cf in by_cust.get(cid, [])
                    if cf and tr["onset"] <= d < tr["onset"] + tr["dur"]
                ),
                default=None,
            )
            self.n[m] += 1
            self.hits7[m] += first is not None and first <= 7
            if first is not None:
                self.delays[m].append(first)
        ids = raw.column("LCLid").cast(pa.string()).to_numpy(zero_copy_only=False)
        days = raw.column("day").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        kwh = raw.column("energy_sum").cast(pa.float64()).to_numpy(zero_copy_only=False)
        heat = electric_heating(relative_hdd_slopes(ids, days, kwh, self.temps))
        for cid in heat:
            if cid in truth or cid not in cycles_by_customer:
                continue
            self.heat_households += 1
            self.heat_cycles += cycles_by_customer[cid]
            self.heat_alerts += sum(1 for _, _, cf in by_cust.get(cid, []) if cf)

    def result(self) -> dict[str, Any]:
        return {
            "definitions": {
                "cold_snap": f"onset week mean <= 30-day mean before - {COLD_DROP_C:g} C, "
                f"and <= {COLD_MAX_C:g} C",
                "electric_heating": f"top {TOP_SHARE:.0%} of HDD slope / base use (>= {MIN_REL_SLOPE:g}), "
                f">= {MIN_FIT_DAYS} days",
            },
            "cold_snap_days": len(self.cold),
            "cold_snap_surges": {
                "n": {m: self.n[m] for m in self.mults},
                "recall_7d": {
                    m: (round(100.0 * self.hits7[m] / self.n[m], 1) if self.n[m] else None)
                    for m in self.mults
                },
                "median_delay_days": {
                    m: (statistics.median(self.delays[m]) if self.delays[m] else None) for m in self.mults
                },
            },
            "electric_heating": {
                "households": self.heat_households,
                "customer_cycles": self.heat_cycles,
                "customer_facing_alerts": self.heat_alerts,
                "false_per_100_cycles": round(100.0 * self.heat_alerts / max(1, self.heat_cycles), 2),
            },
        }


def markdown(ws: Mapping[str, Any], mults: Iterable[float]) -> list[str]:
    """The two slices as report lines."""
    ms = tuple(mults)
    cs, eh = ws["cold_snap_surges"], ws["electric_heating"]
    cells = ["-" if cs["recall_7d"][m] is None else f"{cs['recall_7d'][m]:.0f}% (n {cs['n'][m]})" for m in ms]
    dl = " / ".join(
        "-" if cs["median_delay_days"][m] is None else f"{cs['median_delay_days'][m]:g}" for m in ms
    )
    return [
        "",
        f"Weather-confounded set ({ws['definitions']['cold_snap']}; {ws['cold_snap_days']} cold-snap days):",
        "cold-snap surges, customer-facing within 7 days: "
        + ", ".join(f"x{m:g} {c}" for m, c in zip(ms, cells, strict=True))
        + f"; median days {dl}",
        f"electric-heating homes ({ws['definitions']['electric_heating']}): {eh['households']} untouched "
        f"household-runs, {eh['customer_cycles']} customer-cycles, {eh['customer_facing_alerts']} "
        f"customer-facing alerts = {eh['false_per_100_cycles']:.2f} per 100 customer-cycles",
    ]


def epoch_series(ordinal_temps: Mapping[int, float] | None, epoch_ordinal: int) -> dict[int, float]:
    """A ``Temperatures`` series (proleptic ordinals) keyed by epoch day instead.

    >>> epoch_series({719163: 4.0}, 719163)
    {0: 4.0}
    """
    return {d - epoch_ordinal: t for d, t in (ordinal_temps or {}).items()}
