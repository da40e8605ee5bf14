"""Bootstrap a profile from history rows (per billing cycle or per day); no alerts.

Rows above the meter's rating over their span (max kW x 25 h per day) are
skipped and counted in the profile's reasons (``_history``). Whole-cycle rows
become closed cycles (a row overlapping a known cycle is ignored). Daily rows
are folded like daily readings; days already older than the late window are
summed per billing cycle into closed cycles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_end, insert_closed_cycle
from baselines.cycles import cycle_containing
from baselines.fold import fold_inplace
from baselines.late_window import DayLocator
from baselines.profile import ClosedCycleT, Profile
from baselines.readings import KWH_IMPLAUSIBLE, LONGEST_DAY_H, Reading
from baselines.rules.config import RulesConfig
from meterwatch.contracts import HistoryRow


def load_history(
    profile: Profile,
    history_rows: Iterable[HistoryRow | Mapping[str, Any]],
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator | None = None,
) -> Profile:
    """A new profile with the rows (``HistoryRow`` or dicts of its fields) added; see the module docstring.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.rules.config import RulesConfig
    >>> cust = CustomerConfig("c1", timezone="UTC")
    >>> rows = [{"customer_id": "c1", "start": "2023-01-01", "end": "2023-01-31", "kwh": 250.0}]
    >>> p = load_history(Profile.new("c1"), rows, cust, RulesConfig())
    >>> [(dt.date.fromordinal(c.start), c.kwh) for c in p.closed_cycles]
    [(datetime.date(2023, 1, 1), 250.0)]
    """
    p = profile.clone()
    loc = days if days is not None else DayLocator()
    rows = _plausible(
        p,
        [r if isinstance(r, HistoryRow) else HistoryRow.model_validate(r) for r in history_rows],
        config.max_kw(customer.max_kw, customer.tariff),
    )
    cyc_rows = sorted((r for r in rows if r.start is not None), key=lambda r: r.start or dt.date.min)
    day_rows = sorted((r for r in rows if r.day is not None), key=lambda r: r.day or dt.date.min)
    for r in cyc_rows:
        assert r.start is not None and r.end is not None
        s, e = r.start.toordinal(), r.end.toordinal() + 1  # HistoryRow.end is inclusive
        insert_closed_cycle(p, ClosedCycleT(s, e, round(r.kwh, 3), r.coverage))
    late: dict[int, list[float]] = {}  # cycle start -> [kWh, covered days] of days before the window
    for r in day_rows:
        assert r.day is not None
        d = r.day.toordinal()
        if p.newest_day is not None and d < p.newest_day - config.late_window_days:
            s = cycle_containing(r.day, customer.read_day, customer.cycle_months)[0].toordinal()
            acc = late.setdefault(s, [0.0, 0.0])
            acc[0] += r.kwh
            acc[1] += r.coverage
            continue
        fold_inplace(p, Reading.daily(r.day, r.kwh, r.coverage), customer, config, loc)
    for s, (kwh, covd) in late.items():
        e = cycle_end(s, customer)
        insert_closed_cycle(p, ClosedCycleT(s, e, kwh, min(1.0, covd / (e - s))))
    p.same_period_cache = None
    p.money_cache = None
    p.money_epoch += 1
    return p


def _plausible(p: Profile, rows: list[HistoryRow], max_kw: float) -> list[HistoryRow]:
    """The rows within the meter's rating over their span; the others are counted in ``p.reasons``."""
    kept = []
    for r in rows:
        first, last = (r.day, r.day) if r.day is not None else (r.start, r.end)
        assert first is not None and last is not None  # HistoryRow's own validator
        if 0.0 <= r.kwh <= max_kw * LONGEST_DAY_H * ((last - first).days + 1):  # NaN fails too
            kept.append(r)
    if len(kept) < len(rows):
        p.reasons["_history"] = [KWH_IMPLAUSIBLE, {"skipped_rows": len(rows) - len(kept), "max_kw": max_kw}]
    return kept
