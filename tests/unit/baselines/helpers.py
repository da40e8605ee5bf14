"""Helpers for the baselines tests (plain functions, no fixtures)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import Alert


def sample_data() -> Path:
    """The real London sample kept in the repository (data/sample; same layout as the full data)."""
    from meterwatch.cli.sample_data import sample_dir

    return sample_dir()


def feed_daily(
    engine: Engine,
    cust: CustomerConfig,
    start: dt.date,
    values: Sequence[float],
    profile: Profile | None = None,
) -> tuple[Profile, list[Alert]]:
    p = profile if profile is not None else Profile.new(cust.customer_id)
    alerts: list[Alert] = []
    for i, v in enumerate(values):
        res = engine.process(p, Reading.daily(start + dt.timedelta(days=i), v), cust)
        assert res.rejected is None, res.rejected
        p = res.profile
        alerts.extend(res.alerts)
    return p, alerts


def feed(
    engine: Engine, cust: CustomerConfig, readings: Iterable[Reading], profile: Profile | None = None
) -> tuple[Profile, list[Alert], int, int]:
    p = profile if profile is not None else Profile.new(cust.customer_id)
    alerts: list[Alert] = []
    rejected = dup = 0
    for r in readings:
        res = engine.process(p, r, cust)
        p = res.profile
        alerts.extend(res.alerts)
        rejected += res.rejected is not None
        dup += res.duplicate
    return p, alerts, rejected, dup


def half_hourly(day: dt.date, kwh: Sequence[float], tz: str = "UTC") -> list[Reading]:
    """Interval readings for one local day; one value per half-hour, ts = interval end."""
    from zoneinfo import ZoneInfo

    start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz)).timestamp()
    return [Reading("interval", start + 1800.0 * (i + 1), v, interval_s=1800) for i, v in enumerate(kwh)]


def cycle_totals(engine: Engine, p: Profile) -> dict[dt.date, float]:
    """Closed and open cycle totals (open days included), rounded to Wh."""
    out = {dt.date.fromordinal(c.start): round(c.kwh, 3) for c in p.closed_cycles}
    for i, c in enumerate(p.open_cycles):
        out[dt.date.fromordinal(c.start)] = round(cycle_to_date(p, i), 3)
    return out
