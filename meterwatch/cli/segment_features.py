"""Segment features from daily consumption, vectorised (evaluation and benchmarks).

The service computes segment features with the domain's
``baselines.engine.Engine.segment_features(profile, customer)``; this module computes
the *consumption* features of the same kind straight from a daily table, fast enough to
evaluate the segmenter on the 3,500 London households (``eval/eval_segments.py``)
and in the segmentation tests.

``eval/eval_segments.py`` uses the engine's features by default (``--features
fast`` selects these); the segmentation tests use these, because computing the engine's
features for hundreds of households takes too long for the test budget.

Features (all floats; names shared with the segmenter's labelling vocabulary):

``level_kwh_day``  median daily kWh over the last 365 days
``variability``    robust coefficient of variation of daily kWh (IQR / median), last 365 days
``seasonality``    log((winter mean + 0.1) / (summer mean + 0.1)) (Dec-Feb vs Jun-Aug), 0 without both
``trend``          log(mean of the last 90 days / mean of the same 90 days one year before), 0 if unknown
``weekend_ratio``  log(weekend mean / weekday mean), last 365 days
``zero_share``     share of near-zero days (< 0.1 kWh) in the last 365 days (vacancy)

>>> import datetime as dt
>>> days = np.arange(np.datetime64("2012-01-01"), np.datetime64("2013-12-31"))
>>> winter = np.isin(days.astype("datetime64[M]").astype(int) % 12, [11, 0, 1])
>>> kwh = np.where(winter, 12.0, 6.0)
>>> f = daily_features(days, kwh, dt.date(2013, 12, 31))
>>> round(f["level_kwh_day"], 1), round(f["seasonality"], 3), f["zero_share"]
(6.0, 0.685, 0.0)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from meterwatch.cli.sample_data import DAILY, shared_data_dir

__all__ = ["FEATURE_NAMES", "daily_features", "london_daily_path", "london_features", "shared_data_dir"]

FEATURE_NAMES = ("level_kwh_day", "variability", "seasonality", "trend", "weekend_ratio", "zero_share")


def _mean(a: npt.NDArray[np.float64]) -> float:
    return float(a.mean()) if a.size else float("nan")


def daily_features(
    days: npt.NDArray[np.datetime64], kwh: npt.NDArray[np.float64], as_of: dt.date
) -> dict[str, float]:
    """Features of one household from its daily series up to ``as_of`` (inclusive)."""
    end = np.datetime64(as_of, "D")
    days = days.astype("datetime64[D]")
    ok = (days <= end) & np.isfinite(kwh)
    days, kwh = days[ok], kwh[ok].astype(np.float64)
    year = days > end - np.timedelta64(365, "D")
    d1, k1 = days[year], kwh[year]
    if k1.size == 0:
        return dict.fromkeys(FEATURE_NAMES, 0.0)
    med = float(np.median(k1))
    q75, q25 = np.percentile(k1, [75, 25])
    month = (d1.astype("datetime64[M]").astype(np.int64) % 12) + 1
    winter = _mean(k1[np.isin(month, [12, 1, 2])])
    summer = _mean(k1[np.isin(month, [6, 7, 8])])
    seasonality = (
        float(np.log((winter + 0.1) / (summer + 0.1))) if winter == winter and summer == summer else 0.0
    )
    recent = kwh[days > end - np.timedelta64(90, "D")]
    ago = (days > end - np.timedelta64(365 + 90, "D")) & (days <= end - np.timedelta64(365, "D"))
    trend = 0.0
    if recent.size >= 30 and int(ago.sum()) >= 30:
        trend = float(np.log((recent.mean() + 0.1) / (kwh[ago].mean() + 0.1)))
    dow = (d1.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday -> Monday = 0
    weekend = _mean(k1[dow >= 5])
    weekday = _mean(k1[dow < 5])
    wk = (
        float(np.log((weekend + 0.1) / (weekday + 0.1))) if weekend == weekend and weekday == weekday else 0.0
    )
    return {
        "level_kwh_day": med,
        "variability": float((q75 - q25) / (med + 0.1)),
        "seasonality": seasonality,
        "trend": trend,
        "weekend_ratio": wk,
        "zero_share": float((k1 < 0.1).mean()),
    }


def london_daily_path(root: Path | None = None) -> Path:
    """The London daily file under ``root`` (default: the full data, ``MW_SHARED_DATA``)."""
    return (root or shared_data_dir()) / DAILY


def iter_london_households(
    path: Path | None = None, limit: int | None = None
) -> Iterator[tuple[str, npt.NDArray[np.datetime64], npt.NDArray[np.float64]]]:
    """(LCLid, days, kWh) per household from the London daily parquet, in LCLid order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path or london_daily_path(), columns=["LCLid", "day", "energy_sum"])
    ids = pc.cast(table.column("LCLid"), "string").to_numpy(zero_copy_only=False)
    days = table.column("day").to_numpy().astype("datetime64[D]")
    kwh = table.column("energy_sum").to_numpy(zero_copy_only=False).astype(np.float64)
    order = np.lexsort((days, ids))
    ids, days, kwh = ids[order], days[order], kwh[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size]
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if limit is not None and n >= limit:
            return
        yield str(ids[a]), days[a:b], kwh[a:b]


def london_features(
    as_of: dt.date, path: Path | None = None, limit: int | None = None, min_days: int = 60
) -> dict[str, dict[str, float]]:
    """customer (LCLid) -> features as of ``as_of``, for households with ``min_days`` days of data."""
    out: dict[str, dict[str, float]] = {}
    end = np.datetime64(as_of, "D")
    for cid, days, kwh in iter_london_households(path, limit):
        recent = (days <= end) & (days > end - np.timedelta64(365, "D"))
        if int(recent.sum()) >= min_days:
            out[cid] = daily_features(days, kwh, as_of)
    return out
