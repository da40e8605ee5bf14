"""``sudden_increase`` (and its escalation): recent daily use far above the customer's own baseline.

``recent`` is the ``ignore_top + 1``-th largest of the last ``window_days``
days; ``expected`` the baseline median times the window's weekday factors,
lowered to the week before when that was quieter (not below
``recent_floor``) and raised by last year's own seasonal rise. It fires when
``recent / expected`` reaches ``factor x tolerance``, beyond the customer's own
95th-percentile day, ``z_min`` robust sigmas and ``min_excess_kwh_per_day``
above expected, and ``prior_min_jump`` x the level of the week before (it is
*sudden*). With a weather feed and a sufficient temperature response
(``baselines.weather``), the use the surge days' temperatures explain is expected too (skip
reason ``baselines.weather.explained`` when that explains the surge away). Holidays and away
days (``baselines.special_days``) are no evidence: they are judged as unknown days (skip
reason ``baselines.calendar.holiday`` / ``.away``).
Escalation: after a customer-facing alert this cycle, a surge at
least ``escalation_factor`` x that alert's level fires
``sudden_increase_escalation`` once. Parameters:
``baselines.rules.config.SuddenIncrease``.
"""

from __future__ import annotations

from typing import NamedTuple

from baselines.alerts import CUSTOMER_FACING_KEY, CUSTOMER_LEVEL_KEY, ESCALATION, Finding, Numbers
from baselines.baseline_stats import day_values, weekday
from baselines.profile import Profile
from baselines.rules.config import RulesConfig, SuddenIncrease
from baselines.rules.context import RuleContext
from baselines.stats import robust_sigma
from baselines.weather_profile import Adjustment
from meterwatch.contracts import Observed, Severity

RULE = "sudden_increase"
# last year's cycles must be this well covered to give a seasonal factor
SEASON_MIN_COVERAGE = 0.8


class Surge(NamedTuple):
    """The figures of a surge that passed every test."""

    recent: float
    expected: float
    ratio: float
    z: float
    season: float
    prior_ratio: float | None
    days: int  # the days behind ``recent``: the window, or a graded step's days
    graded: bool = False  # fired by a graded step (``SuddenIncrease.graded``), not the window
    weather: Adjustment | None = None  # the temperature-explained kWh/day in ``expected``


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The finding(s): the alert (once per cycle) and/or its escalation (see the module docstring).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.newest_day = 738900
    >>> p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738899, 0)
    >>> check(ctx), p.reasons[RULE]
    ((), ['baselines.sufficiency.too_few_days', {'days': 0, 'needed': 14}])
    """
    cfg = ctx.rules.sudden_increase
    p = ctx.profile
    c = ctx.cycle
    fired_here = p.fired.get(RULE) == c.start
    # (a customer-facing alert this cycle is rare: test that before the call)
    prev_level = _escalation_base(p, cfg, c.start) if p.fired.get(CUSTOMER_FACING_KEY) == c.start else None
    if fired_here and prev_level is None:
        return ()
    med = p.baseline_median
    if med is None or p.baseline_days < cfg.min_baseline_days:
        ctx.skip(
            RULE, "baselines.sufficiency.too_few_days", days=p.baseline_days, needed=cfg.min_baseline_days
        )
        return ()
    if med <= 0:
        ctx.skip(RULE, "baselines.sufficiency.zero_baseline")
        return ()
    window, special, masked = ctx.judged_window(cfg.window_days)  # holidays/away days: no evidence
    if _newest_days_all_low(p, cfg, med, window):
        p.reasons.pop(RULE, None)  # evaluated: no reason to show
        return ()
    surge = _measure(ctx, cfg, med, window) or _graded(ctx, cfg, med, window)
    if surge is not None and ctx.temps is not None:
        surge = _weather(ctx, cfg, med, surge)
        if surge is None:
            return ()  # the weather explains it (skip reason baselines.weather.explained)
    if surge is None:
        if masked and p.reasons.get(RULE, ("",))[0] == "baselines.sufficiency.recent_days_missing":
            # the days are there, but they are holidays or away days (baselines.special_days)
            ctx.skip(RULE, f"baselines.calendar.{special}", special_days=masked, window_days=cfg.window_days)
        return ()
    return _findings(ctx, cfg, med, surge, fired_here, prev_level)


def _escalation_base(p: Profile, cfg: SuddenIncrease, cycle_start: int) -> float | None:
    """The daily level (kWh) of this cycle's customer-facing alert, if an escalation is still possible."""
    # escalation: the customer was already alerted this cycle (by this or another rule); a new,
    # sudden excursion clearly above the level of that alert may be told once more
    if (
        cfg.escalation
        and p.fired.get(CUSTOMER_FACING_KEY) == cycle_start
        and p.fired.get(ESCALATION) != cycle_start
        and CUSTOMER_LEVEL_KEY in p.fired
    ):
        return p.fired[CUSTOMER_LEVEL_KEY] / 1000.0
    return None


def _newest_days_all_low(p: Profile, cfg: SuddenIncrease, med: float, window: list[float | None]) -> bool:
    """Cheap exit: the newest (misses + 1) days are all known and below the lowest possible trigger.

    Then fewer than ``ignore_top + 1`` days of the window can be high; this ends
    almost every evaluation before any sorting.
    """
    floor = cfg.factor * cfg.tolerance * med * min(p.weekday_factors) * min(1.0, cfg.recent_floor)
    misses = cfg.window_days - cfg.ignore_top - 1
    if not 0 <= misses < len(window):
        return False
    low = 0
    for v in window[len(window) - misses - 1 :]:
        if v is None or v >= floor:
            break
        low += 1
    return low == misses + 1


def _measure(ctx: RuleContext, cfg: SuddenIncrease, med: float, window: list[float | None]) -> Surge | None:
    """The surge's figures if every test passes, else ``None`` (records missing days)."""
    p = ctx.profile
    xs: list[float] = []
    wsum = 0.0
    wf = p.weekday_factors
    w0 = weekday(ctx.as_of - cfg.window_days + 1)
    for i, v in enumerate(window):
        if v is not None:
            xs.append(v)
            wsum += wf[(w0 + i) % 7]
    if len(xs) <= cfg.ignore_top or len(xs) < cfg.window_days - 1:
        ctx.skip(RULE, "baselines.sufficiency.recent_days_missing", present=len(xs))
        return None
    p.reasons.pop(RULE, None)  # evaluated: no reason to show
    xs.sort(reverse=True)
    recent = xs[cfg.ignore_top]
    # cheap exit before the prior level: the level factor below is at least min(1, recent_floor)
    # (> 0), and rounded float operations are monotonic, so this bounds the ratio from above
    if recent / (med * min(1.0, cfg.recent_floor) * wsum / len(xs)) < cfg.factor * cfg.tolerance:
        return None
    level_factor = 1.0
    # the household's level of the days before the window
    lvp = ctx.prior_level(ctx.as_of - cfg.window_days, cfg.prior_days) if cfg.prior_days else None
    if cfg.recent_floor < 1.0 and cfg.prior_days:
        # ... lowers the expected level when lower than its 8-week median
        if lvp is not None:
            level_factor = max(cfg.recent_floor, min(1.0, lvp[0] / med))
    expected = med * level_factor * wsum / len(xs)
    ratio = recent / expected
    if ratio < cfg.factor * cfg.tolerance:
        return None
    season = 1.0
    if cfg.seasonal_adjust:
        season = season_factor(p, ctx.as_of, ctx.config)
        if season > 1.0:
            expected *= season
            ratio = recent / expected
            if ratio < cfg.factor * cfg.tolerance:
                return None  # last year's own seasonal rise explains it (heating, dark evenings)
    hi = p.p95_day
    if cfg.beyond_own_spikes and hi is not None and recent <= hi:
        return None  # this customer has such days regularly (their own 95th-percentile day)
    z = (recent - expected) / robust_sigma(p.baseline_mad, med)
    if z < cfg.z_min or recent - expected < cfg.min_excess_kwh_per_day:
        return None
    prior_ratio = None
    if cfg.prior_days and lvp is not None:
        prior_ratio = recent / (lvp[0] * wsum / len(xs)) if lvp[0] > 0 else None
        if prior_ratio is not None and prior_ratio < cfg.prior_min_jump:
            return None  # not sudden: the level was already about as high the week before
    return Surge(recent, expected, ratio, z, season, prior_ratio, cfg.window_days)


def _graded(ctx: RuleContext, cfg: SuddenIncrease, med: float, window: list[float | None]) -> Surge | None:
    """Graded evidence: a large, steady jump over the newest few days (``cfg.graded``), else ``None``.

    ``recent`` is the lowest of the step's newest days (weekday-adjusted
    expectation over the same days); the rest of the tests are the window's.
    """
    low = min(1.0, cfg.recent_floor) * min(ctx.profile.weekday_factors)
    for step in cfg.graded:
        if step.days > len(window):
            continue
        days = window[len(window) - step.days :]
        known = [v for v in days if v is not None]
        # cheap exit: expected is at least med x min(1, recent_floor) x the lowest weekday factor
        # (a relative margin of 1e-9: the products round in another order than the ratio below)
        if len(known) < step.days or min(known) < step.ratio * med * low * (1.0 - 1e-9):
            continue
        s = _step_surge(ctx, cfg, med, step.days, known)
        if s is None or s.ratio < step.ratio or s.z < step.z_min:
            continue
        if step.prior_min_jump is not None and (s.prior_ratio is None or s.prior_ratio < step.prior_min_jump):
            continue
        if step.beyond_own_max and s.recent <= _own_max_before(ctx, ctx.as_of - step.days + 1):
            continue
        ctx.profile.reasons.pop(RULE, None)  # judged: a missing day of the window is no reason now
        return s
    return None


def _own_max_before(ctx: RuleContext, day: int) -> float:
    """The customer's highest known day before ``day``: the ring's final days (but its special
    days) and the open days of the late window (0.0 when none)."""
    p = ctx.profile
    if p.final_start is None:
        return 0.0
    vals = day_values(p, p.final_start, day, ctx.config.min_day_coverage)
    sp = p.special_flags  # holidays, away days, a previous occupant's days: no habit to exceed
    return max((v for i, v in enumerate(vals) if v is not None and not (sp >> i) & 1), default=0.0)


def _step_surge(ctx: RuleContext, cfg: SuddenIncrease, med: float, n: int, days: list[float]) -> Surge | None:
    """The figures of the newest ``n`` days as a surge, if they pass the window's other tests."""
    p = ctx.profile
    recent = min(days)
    wf = p.weekday_factors
    w0 = weekday(ctx.as_of - n + 1)
    wmean = sum(wf[(w0 + i) % 7] for i in range(n)) / n
    lvp = ctx.prior_level(ctx.as_of - n, cfg.prior_days) if cfg.prior_days else None
    level_factor = 1.0
    if cfg.recent_floor < 1.0 and lvp is not None:
        level_factor = max(cfg.recent_floor, min(1.0, lvp[0] / med))
    expected = med * level_factor * wmean
    season = season_factor(p, ctx.as_of, ctx.config) if cfg.seasonal_adjust else 1.0
    expected *= max(1.0, season)
    hi = p.p95_day
    if cfg.beyond_own_spikes and hi is not None and recent <= hi:
        return None
    z = (recent - expected) / robust_sigma(p.baseline_mad, med)
    if recent - expected < cfg.min_excess_kwh_per_day:
        return None
    prior_ratio = None
    if lvp is not None and lvp[0] > 0:
        prior_ratio = recent / (lvp[0] * wmean)
        if prior_ratio < cfg.prior_min_jump:
            return None
    return Surge(recent, expected, recent / expected, z, season, prior_ratio, n, graded=True)


def _weather(ctx: RuleContext, cfg: SuddenIncrease, med: float, s: Surge) -> Surge | None:
    """The surge judged again with the temperature-explained use added to its expectation
    (``baselines.weather``), when the customer's temperature response is sufficient.

    The expectation becomes the larger of the seasonal one and the unseasoned one plus the
    kWh/day the surge days' temperatures explain over the baseline weeks' (the two account for
    the same heating). ``None`` (skip reason ``baselines.weather.explained``, with the numbers)
    when the surge then fails the ratio, robust-score or excess test.
    """
    adj = ctx.weather_adjustment(s.days)
    if adj is None or adj.kwh <= 0.0:
        return s
    expected = max(s.expected, s.expected / max(1.0, s.season) + adj.kwh)
    if expected <= s.expected:
        return s  # last year's seasonal rise already explains as much
    ratio = s.recent / expected
    z = (s.recent - expected) / robust_sigma(ctx.profile.baseline_mad, med)
    excess = s.recent - expected
    if ratio < cfg.factor * cfg.tolerance or z < cfg.z_min or excess < cfg.min_excess_kwh_per_day:
        ctx.skip(
            RULE,
            "baselines.weather.explained",
            expected_extra_kwh=round(adj.kwh, 3),
            hdd=adj.hdd,
            baseline_hdd=adj.baseline_hdd,
            recent_kwh=round(s.recent, 3),
            expected_kwh=round(expected, 3),
        )
        return None
    return s._replace(expected=expected, ratio=ratio, z=z, weather=adj)


def _findings(
    ctx: RuleContext, cfg: SuddenIncrease, med: float, s: Surge, fired_here: bool, prev_level: float | None
) -> tuple[Finding, ...]:
    """The alert (unless it fired this cycle) and the escalation (when high enough above ``prev_level``)."""
    sev: Severity = "critical" if s.ratio >= cfg.critical_factor else cfg.severity
    observed = Observed(
        cycle_to_date_kwh=round(ctx.cycle_to_date(ctx.cycle_index), 3),
        baseline_daily_kwh=round(med, 3),
        recent_daily_kwh=round(s.recent, 3),
        ratio=round(s.ratio, 3),
    )
    numbers: Numbers = {
        "z": round(s.z, 2),
        "expected_kwh": round(s.expected, 3),
        "window_days": s.days,
        "evidence": "graded" if s.graded else "window",
        "prior_ratio": None if s.prior_ratio is None else round(s.prior_ratio, 3),
        "season_factor": round(s.season, 3),
    }
    if s.weather is not None:  # (absent without a weather feed: the numbers stay as they were)
        numbers["weather_kwh"] = round(s.weather.kwh, 3)
        numbers["hdd"] = s.weather.hdd
        numbers["baseline_hdd"] = s.weather.baseline_hdd
    expl = {"recent": s.recent, "baseline": med, "ratio": s.ratio}
    out: list[Finding] = []
    if not fired_here:
        out.append(Finding(RULE, ctx.cycle, sev, cfg.customer_facing, observed, expl, numbers))
    if prev_level is not None and cfg.customer_facing and s.recent >= cfg.escalation_factor * prev_level:
        out.append(
            Finding(
                ESCALATION,
                ctx.cycle,
                sev,
                True,
                observed,
                {**expl, "previous": prev_level},
                {**numbers, "previous_alert_daily_kwh": round(prev_level, 3)},
                escalation=True,
            )
        )
    return tuple(out)


def season_factor(p: Profile, as_of: int, config: RulesConfig) -> float:
    """How much this customer's daily use rose last year from the baseline weeks to these days.

    Ratio of last year's daily kWh in the cycle containing ``as_of - 365`` to
    that in the cycle containing the middle of the baseline window a year
    earlier; 1.0 without such history; clipped to [0.5, 1.5].

    >>> from baselines.rules.config import RulesConfig
    >>> season_factor(Profile.new("c"), 738900, RulesConfig())
    1.0
    """
    now_c = later = None
    mid = as_of - config.late_window_days - config.ring_days // 2 - 365
    for c in p.closed_cycles:
        if c.start <= as_of - 365 < c.end:
            later = c
        if c.start <= mid < c.end:
            now_c = c
    if (
        later is None
        or now_c is None
        or later.coverage < SEASON_MIN_COVERAGE
        or now_c.coverage < SEASON_MIN_COVERAGE
    ):
        return 1.0
    a = later.kwh / (later.end - later.start)
    b = now_c.kwh / (now_c.end - now_c.start)
    if b <= 0:
        return 1.0
    return max(0.5, min(1.5, a / b))
