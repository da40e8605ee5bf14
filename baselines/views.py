"""Read-model views of a profile: the Ops API's baseline snapshot and the segmenter's features.

Pure functions of a profile (and the customer); they change nothing but the
profile's caches (same period, money). The snapshot's ``money`` is the running
cycle's bill as of the newest complete day (``baselines.billing.snapshot_money``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import TypeAdapter

from baselines.alerts import alert_id
from baselines.baseline_stats import project_cycle, recent_level
from baselines.billing import Tariffs, snapshot_money
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date, same_period_figures
from baselines.cycles import cycle_containing, local_date, same_period
from baselines.profile import Profile
from baselines.rules.config import RULES, RulesConfig
from baselines.rules.context import rounded
from baselines.stats import robust_sigma
from meterwatch.contracts import BaselineSnapshot, ClosedCycle, MoneyNow, SegmentRef

# a closed cycle at least this well covered counts for seasonality and trend
FULL_CYCLE_COVERAGE = 0.8
TARIFF_CODES = {"residential": 0.0, "commercial": 1.0, "industrial": 2.0}


def _d(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def snapshot(
    p: Profile,
    customer: CustomerConfig,
    segment: SegmentRef | None,
    now: dt.datetime,
    config: RulesConfig,
    tariffs: Tariffs | None = None,
) -> BaselineSnapshot:
    """The Ops API's view of a profile (``GET /v1/customers/{id}/baseline``); see the module docstring.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.rules.config import RulesConfig
    >>> snap = snapshot(Profile.new("c1"), CustomerConfig("c1", timezone="UTC"), None,
    ...                 dt.datetime(2024, 5, 3, tzinfo=dt.UTC), RulesConfig())
    >>> snap.cycle.start, snap.cycle.end, snap.cycle.cycle_to_date_kwh
    (datetime.date(2024, 5, 1), datetime.date(2024, 5, 31), 0.0)
    """
    return BaselineSnapshot.model_validate(snapshot_parts(p, customer, segment, now, config, tariffs))


def snapshot_parts(
    p: Profile,
    customer: CustomerConfig,
    segment: SegmentRef | None,
    now: dt.datetime,
    config: RulesConfig,
    tariffs: Tariffs | None = None,
    *,
    cycles: bool = True,
) -> dict[str, Any]:
    """The snapshot's fields as plain values, not validated (``cycles=False``: no closed cycles).

    ``BaselineSnapshot.model_validate`` of it is :func:`snapshot`; the worker writes its JSON
    with :func:`snapshot_json` (without the cycles, then their cached JSON). ``money`` is the
    ``MoneyNow`` model itself (cached on the profile; pydantic takes the instance as it is).

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.rules.config import RulesConfig
    >>> parts = snapshot_parts(Profile.new("c1"), CustomerConfig("c1", timezone="UTC"), None,
    ...                        dt.datetime(2024, 5, 3, tzinfo=dt.UTC), RulesConfig())
    >>> list(parts)[:4], parts["cycle"]["cycle_to_date_kwh"]
    (['customer_id', 'as_of', 'cycle', 'same_period'], 0.0)
    """
    mincov = config.min_day_coverage
    now_day = local_date(now.timestamp(), customer.tz).toordinal()
    as_of = dt.datetime.fromtimestamp(p.latest_ts, dt.UTC) if p.latest_ts is not None else now
    cycle = _cycle_now(p, customer, now_day, mincov)
    start, end = cycle["start"].toordinal(), cycle["end"].toordinal() + 1
    sp = same_period_figures(p, start, end)
    s1, e1 = same_period(_d(start), _d(end))
    reasons = [{"code": str(v[0]), "message": k, "numbers": dict(v[1])} for k, v in sorted(p.reasons.items())]
    open_alerts = [alert_id(p.customer_id, rule, _d(start)) for rule in RULES if p.fired.get(rule) == start]
    recent = recent_level(p, p.newest_day - 1, 7, mincov) if p.newest_day is not None else None
    money = snapshot_money(p, customer, tariffs, mincov) if tariffs is not None else None
    return {
        "customer_id": p.customer_id,
        "as_of": as_of,
        "cycle": cycle,
        "same_period": {
            "start": s1 if sp else None,
            "end": (e1 - dt.timedelta(days=1)) if sp else None,
            "kwh": round(sp[0], 3) if sp else None,
            "coverage": round(sp[1], 3) if sp else None,
        },
        "baseline": {
            "daily_kwh": rounded(p.baseline_median),
            "cycles": _cycles(p) if cycles else [],
        },
        "segment": segment.model_dump() if segment is not None else SegmentRef().model_dump(),
        "open_alerts": open_alerts,
        "manager_id": customer.manager_id,
        "recent_daily_kwh": round(recent[0], 3) if recent is not None else None,
        "reasons": reasons,
        "processed_at": now,
        "money": money,
    }


def _cycles(p: Profile) -> list[dict[str, Any]]:
    return [
        {"start": _d(c.start), "end": _d(c.end - 1), "kwh": round(c.kwh, 3), "coverage": c.coverage}
        for c in p.closed_cycles
    ]


def _cycle_now(p: Profile, customer: CustomerConfig, now_day: int, min_day_coverage: float) -> dict[str, Any]:
    """The running cycle: to date (with a provisional register estimate), elapsed days, projection."""
    projected = None
    if p.open_cycles:
        ci = len(p.open_cycles) - 1
        c = p.open_cycles[ci]
        ctd = cycle_to_date(p, ci)
        last = p.newest_day if p.newest_day is not None else now_day
        days_elapsed = float(min(c.end - c.start, last - c.start + 1))
        if p.newest_day is not None:
            proj = project_cycle(p, ci, p.newest_day - 1, min_day_coverage)
            if proj is not None:
                projected = round(proj[0], 3)
        start, end = c.start, c.end
    else:
        s, e = cycle_containing(_d(now_day), customer.read_day, customer.cycle_months)
        start, end = s.toordinal(), e.toordinal()
        ctd, days_elapsed = 0.0, float(now_day - start + 1)
    if p.register_estimate is not None and p.register_read is not None:
        ctd += max(
            0.0, p.register_estimate[1] - p.register_read[1]
        )  # provisional, until the next actual read
    return {
        "start": _d(start),
        "end": _d(end - 1),
        "cycle_to_date_kwh": round(ctd, 3),
        "days_elapsed": days_elapsed,
        "projected_kwh": projected,
    }


def segment_features(p: Profile, customer: CustomerConfig) -> dict[str, float]:
    """Named, stable features for the online segmenter (missing values are neutral).

    Keys: ``level_kwh_day``, ``variability``, ``seasonality``, ``trend``,
    ``night_share``, ``weekend_ratio``, ``arrears_amount``, ``arrears_count``,
    ``complaints_count``, ``rented``, ``tariff_code``.

    >>> from baselines.customer import CustomerConfig
    >>> f = segment_features(Profile.new("c1"), CustomerConfig("c1", occupancy="rented"))
    >>> sorted(f)[:3], f["rented"]
    (['arrears_amount', 'arrears_count', 'complaints_count'], 1.0)
    """
    med = p.baseline_median or 0.0
    variability = (robust_sigma(p.baseline_mad, med) / med) if med > 0 else 0.0
    full = [c for c in p.closed_cycles if c.coverage >= FULL_CYCLE_COVERAGE and c.end > c.start]
    daily = [c.kwh / (c.end - c.start) for c in full[-12:]]
    seasonality = 0.0
    trend = 0.0
    if len(daily) >= 4:
        m = sum(daily) / len(daily)
        if m > 0:
            sd = (sum((x - m) ** 2 for x in daily) / len(daily)) ** 0.5
            seasonality = sd / m
    if len(full) >= 13:
        # latest cycle vs the same cycle a year before (seasonally matched growth)
        last = full[-1]
        sp = same_period_figures(p, last.start, last.end)
        if sp is not None and sp[0] > 0 and sp[1] >= FULL_CYCLE_COVERAGE:
            trend = last.kwh / sp[0] - 1.0
    wf = p.weekday_factors
    weekday = sum(wf[:5]) / 5
    weekend_ratio = (sum(wf[5:]) / 2) / weekday if weekday > 0 else 1.0
    return {
        "level_kwh_day": round(med, 4),
        "variability": round(min(variability, 5.0), 4),
        "seasonality": round(seasonality, 4),
        "trend": round(max(-1.0, min(trend, 5.0)), 4),
        "night_share": round(p.night_share if p.night_share is not None else 0.0, 4),
        "weekend_ratio": round(weekend_ratio, 4),
        "arrears_amount": float(customer.arrears_amount),
        "arrears_count": float(customer.arrears_count),
        "complaints_count": float(customer.complaints_count),
        "rented": 1.0 if customer.occupancy == "rented" else 0.0,
        "tariff_code": TARIFF_CODES.get(customer.tariff, 0.0),
    }


_CYCLES = TypeAdapter(list[ClosedCycle])
_NO_CYCLES = b'"cycles":[]'


def cycles_json(p: Profile) -> bytes:
    """The snapshot's ``baseline.cycles`` as JSON, byte for byte as the model writes them.

    Written directly: a date is its ISO text (kept per day), a float its ``repr`` (the
    shortest round-trip digits, as pydantic writes them); a float ``repr`` would write
    with an exponent (or inf, nan) takes pydantic's path for the whole list.

    >>> from baselines.profile import ClosedCycleT
    >>> p = Profile.new("c"); p.closed_cycles.append(ClosedCycleT(738886, 738917, 250, 1))
    >>> cycles_json(p)
    b'[{"start":"2024-01-01","end":"2024-01-31","kwh":250.0,"coverage":1.0}]'
    """
    out = []
    for c in p.closed_cycles:
        kwh, cov = repr(float(round(c.kwh, 3))), repr(float(c.coverage))
        if "e" in kwh or "n" in kwh or "e" in cov or "n" in cov:  # exponent, inf, nan: pydantic's spelling
            return _CYCLES.dump_json(_CYCLES.validate_python(_cycles(p)))
        out.append(f'{{"start":{_iso(c.start)},"end":{_iso(c.end - 1)},"kwh":{kwh},"coverage":{cov}}}')
    return ("[" + ",".join(out) + "]").encode()


_ISO: dict[int, str] = {}


def _iso(ordinal: int) -> str:
    """``"YYYY-MM-DD"`` (quoted) of a day; kept per day (a few thousand days are ever asked)."""
    s = _ISO.get(ordinal)
    if s is None:
        if len(_ISO) > 100_000:
            _ISO.clear()
        s = _ISO[ordinal] = f'"{_d(ordinal).isoformat()}"'
    return s


def money_json(p: Profile, money: MoneyNow | None) -> bytes | None:
    """The JSON of the snapshot's ``money`` (``parts["money"]``), kept in the profile's money cache
    with the object it was written from (``snapshot_money`` gives the same object until its figures
    change), for :func:`snapshot_json` to splice in.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.engine import Engine
    >>> from baselines.readings import Reading
    >>> eng, p = Engine(), Profile.new("c"); cust = CustomerConfig("c", tariff_plan="cn-js-residential")
    >>> for d in range(1, 4):
    ...     _ = eng.process_inplace(p, Reading.daily(dt.date(2024, 5, d), 10.0), cust)
    >>> m = eng.snapshot_parts(p, cust, None, dt.datetime(2024, 5, 4, tzinfo=dt.UTC))["money"]
    >>> money_json(p, m)[:61]
    b'{"plan_id":"cn-js-residential","currency":"CNY","as_of":"2024'
    >>> money_json(p, m) is money_json(p, m), money_json(p, None)
    (True, None)
    """
    if money is None:
        return None
    cache = p.money_cache
    if cache is None:
        cache = p.money_cache = {}
    hit = cache.get("snapshot_json")
    if hit is not None and hit[0] is money:
        out: bytes = hit[1]
        return out
    out = money.model_dump_json().encode()
    cache["snapshot_json"] = (money, out)
    return out


def snapshot_json(parts: dict[str, Any], cycles: bytes, money: bytes | None = None) -> bytes:
    """``BaselineSnapshot`` JSON of ``parts`` (made with ``cycles=False``) with ``cycles`` (``cycles_json``).

    The same bytes as the model with its cycles writes: pydantic writes the snapshot with no
    cycles, then their JSON takes the place of the empty list (``"cycles":[]`` occurs once: in
    JSON text a quote inside a string is escaped). Why: validating the up to 36 closed cycles
    was most of the model's cost (and building their dates), and the worker writes a snapshot
    per changed customer and flush.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.closed_cycles.append(ClosedCycleT(738886, 738917, 250.0, 1))
    >>> now = dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
    >>> args = p, CustomerConfig("c", timezone="UTC"), None, now, RulesConfig()
    >>> body = snapshot_json(snapshot_parts(*args, cycles=False), cycles_json(p))
    >>> body == snapshot(*args).model_dump_json().encode()
    True

    ``money``: the JSON of the money figures (:func:`money_json`, ``parts["money"]`` then None),
    written as the model's last field (it is, and it is left out when None), so that pydantic
    need not write the same figures again on every flush.
    """
    assert not parts["baseline"]["cycles"]
    body = BaselineSnapshot.model_validate(parts).model_dump_json().encode()
    body = body.replace(_NO_CYCLES, b'"cycles":' + cycles, 1)
    if money is None:
        return body
    assert parts.get("money") is None and body.endswith(b"}")
    return body[:-1] + b',"money":' + money + b"}"
