"""Segment features of the London households, computed the production way (evaluation, tests).

The service computes a customer's segment features with the domain engine: every reading
goes through ``baselines.engine.Engine`` (the per-customer fold) and
``Engine.segment_features(profile, customer)`` turns the profile into named floats. This
module does exactly that for households read from the London daily file (``LCLid``,
``day``, ``energy_sum``, ``energy_count``), so that the segmenter is evaluated and tested on
the features it sees in production (``eval/eval_segments.py``, the segmenter's tests).

Readings go through ``Engine.process_inplace`` — the call the stream and the backtest make —
with ``emit=False``: the rules are not evaluated, which changes no profile field that the
features read (the fold, cycles, baseline and weekday factors are updated either way; a
test checks that the features are identical with the rules on).

>>> import datetime as dt
>>> days = np.arange(np.datetime64("2012-01-01"), np.datetime64("2013-01-01"))
>>> weekend = (days.astype(int) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
>>> h = Household("h1", days, np.where(weekend, 12.0, 6.0), np.ones(days.size))
>>> [f] = engine_features([h], [dt.date(2012, 12, 31)])
>>> round(f["h1"]["level_kwh_day"], 1), round(f["h1"]["weekend_ratio"], 2), f["h1"]["rented"]
(6.0, 1.73, 0.0)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.cli.sample_data import DAILY, shared_data_dir


@dataclass(frozen=True)
class Household:
    """One household's daily series (days ascending; NaN kWh = no reading that day)."""

    customer_id: str
    days: npt.NDArray[np.datetime64]
    kwh: npt.NDArray[np.float64]
    coverage: npt.NDArray[np.float64]


def london_daily_path(root: Path | None = None) -> Path:
    """The London daily file under ``root`` (default: the full data, ``MW_SHARED_DATA``)."""
    return (root or shared_data_dir()) / DAILY


def iter_london_households(path: Path | None = None, limit: int | None = None) -> Iterator[Household]:
    """Households of the London daily parquet, in LCLid order (coverage = energy_count / 48)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path or london_daily_path())
    ids = pc.cast(table.column("LCLid"), "string").to_numpy(zero_copy_only=False)
    days = table.column("day").to_numpy().astype("datetime64[D]")
    kwh = table.column("energy_sum").to_numpy(zero_copy_only=False).astype(np.float64)
    if "energy_count" in table.column_names:
        count = table.column("energy_count").to_numpy(zero_copy_only=False).astype(np.float64)
        coverage = np.where(np.isfinite(count), np.clip(count / 48.0, 0.0, 1.0), 1.0)
    else:
        coverage = np.ones(kwh.size)
    order = np.lexsort((days, ids))
    ids, days, kwh, coverage = ids[order], days[order], kwh[order], coverage[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size]
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if limit is not None and n >= limit:
            return
        yield Household(str(ids[a]), days[a:b], kwh[a:b], coverage[a:b])


def engine_features(
    households: Iterable[Household],
    as_of: Sequence[dt.date],
    *,
    timezone: str = "Europe/London",
    min_days: int = 60,
    emit: bool = False,
) -> list[dict[str, dict[str, float]]]:
    """Production segment features of every household at each ``as_of`` date (ascending).

    Each household's readings up to a date are folded by the engine (one ``Engine`` for all,
    each household with the backtest's default ``CustomerConfig``: read day 1, monthly
    cycles); the features are taken as of that date for households with at least
    ``min_days`` readings in the 365 days before it. Returns one dict (customer -> features)
    per date, in the order given. ``emit=True`` evaluates the rules as well (slower; same
    features).
    """
    checkpoints = list(as_of)
    if checkpoints != sorted(checkpoints):
        raise ValueError("as_of dates must be ascending")
    engine = Engine()
    out: list[dict[str, dict[str, float]]] = [{} for _ in checkpoints]
    for h in households:
        ok = np.isfinite(h.kwh) & (h.kwh >= 0)
        days: list[dt.date] = h.days[ok].astype("datetime64[D]").tolist()
        kwh: list[float] = h.kwh[ok].tolist()
        cov: list[float] = h.coverage[ok].tolist()
        cust = CustomerConfig(h.customer_id, timezone=timezone)
        profile = Profile.new(h.customer_id)
        i = 0
        for j, cp in enumerate(checkpoints):
            while i < len(days) and days[i] <= cp:
                engine.process_inplace(profile, Reading.daily(days[i], kwh[i], cov[i]), cust, emit=emit)
                i += 1
            recent = sum(1 for d in days[:i] if (cp - d).days < 365)
            if recent >= min_days:
                out[j][h.customer_id] = engine.segment_features(profile, cust)
    return out


def london_engine_features(
    as_of: Sequence[dt.date], path: Path | None = None, limit: int | None = None, min_days: int = 60
) -> list[dict[str, dict[str, float]]]:
    """:func:`engine_features` of the first ``limit`` London households (all by default)."""
    return engine_features(iter_london_households(path, limit), as_of, min_days=min_days)
