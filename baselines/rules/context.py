"""``RuleContext``: what every rule reads, gathered once per evaluation.

An evaluation happens once per customer and day (when the rules' as-of day
moves on), and, with interval data, ``same_period_reached`` is also checked
on a reading that may cross its threshold. The context holds the profile, the
rule set for the customer's tariff and segment, the customer, the segment,
the reading time, the as-of day and its billing cycle, and the running cycle.
The figures derived from the profile (day values, the recent level, the same
period, cycle-to-date) are methods: most evaluations end at a cheap exit and
never need them, so they are computed only when a rule asks (the same-period
figures are cached on the profile).

Rules record why they could not be evaluated with ``skip`` (shown in the
baseline snapshot) and drop it (``profile.reasons.pop(rule, None)``, inline:
it runs on most evaluations) when they could.

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from baselines.baseline_stats import day_values, project_cycle, recent_level
from baselines.billing import Tariffs
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date, same_period_figures
from baselines.profile import OpenCycle, Profile
from baselines.rules.config import RulesConfig, RuleSet
from baselines.special_days import special_day
from baselines.weather_profile import Adjustment, window_adjustment
from meterwatch.contracts import SegmentRef

Clock = Callable[[], dt.datetime]


def rounded(x: float | None) -> float | None:
    """``x`` rounded to 3 decimals (Wh), ``None`` stays ``None``.

    >>> rounded(1.23456), rounded(None)
    (1.235, None)
    """
    return None if x is None else round(x, 3)


class RuleContext:
    """The inputs of one evaluation (see the module docstring).

    ``as_of`` is the newest complete day (the newest day, or the day before
    while the newest is incomplete); ``cycle`` (index ``cycle_index``) the open
    cycle containing it; ``running_cycle`` the newest open cycle and
    ``newest`` the newest day with data (``same_period_reached`` judges the
    running cycle up to the newest day).

    Every method, by example:

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT, OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.newest_day = 738900                 # 15 January 2024
    >>> p.open_cycles.append(OpenCycle(738886, 738917, 56.0, 14.0))
    >>> p.final_start, p.final_days = 738886, [4.0] * 14
    >>> p.closed_cycles.append(ClosedCycleT(738521, 738552, 310.0, 1.0))
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738899, 0)
    >>> ctx.newest - ctx.as_of, ctx.cycle is ctx.running_cycle, ctx.window(3), ctx.days(738899, 738901)
    (1, True, [4.0, 4.0, 4.0], [4.0, None])
    >>> ctx.level(738899), ctx.projection(), ctx.same_period(ctx.cycle), ctx.cycle_to_date(0)
    ((4.0, 7), (124.0, 56.0, 4.0), (310.0, 1.0), 56.0)
    >>> ctx.skip("sudden_increase", "baselines.sufficiency.too_few_days", days=3); p.reasons
    {'sudden_increase': ['baselines.sufficiency.too_few_days', {'days': 3}]}
    """

    __slots__ = (
        "as_of",
        "clock",
        "config",
        "customer",
        "cycle",
        "cycle_index",
        "newest",
        "profile",
        "projected",
        "rules",
        "running_cycle",
        "running_index",
        "segment",
        "tariffs",
        "temps",
        "ts",
    )

    def __init__(
        self,
        profile: Profile,
        config: RulesConfig,
        rules: RuleSet,
        customer: CustomerConfig,
        segment: SegmentRef | None,
        ts: float,
        clock: Clock | None,
        as_of: int,
        cycle_index: int,
        tariffs: Tariffs | None = None,
        temps: Mapping[int, float] | None = None,
    ) -> None:
        self.profile = profile
        self.tariffs = tariffs
        self.temps = temps  # the region's daily temperatures (baselines.weather); None: no feed
        self.config = config
        self.rules = rules
        self.customer = customer
        self.segment = segment
        self.ts = ts
        self.clock = clock
        self.as_of = as_of
        self.cycle_index = cycle_index
        cycles = profile.open_cycles
        self.cycle: OpenCycle = cycles[cycle_index]
        self.running_index = len(cycles) - 1
        self.running_cycle: OpenCycle = cycles[-1]
        self.newest: int = profile.newest_day or as_of
        self.projected: tuple[float, float, float] | bool | None = False  # False: not computed yet

    # ------------------------------------------------------------------ figures
    def days(self, lo: int, hi: int) -> list[float | None]:
        """kWh of every day in ``[lo, hi)`` (``None``: unknown or not covered enough)."""
        return day_values(self.profile, lo, hi, self.config.min_day_coverage)

    def window(self, n: int) -> list[float | None]:
        """kWh of the ``n`` days ending with ``as_of``."""
        return day_values(self.profile, self.as_of - n + 1, self.as_of + 1, self.config.min_day_coverage)

    def judged_window(self, n: int) -> tuple[list[float | None], str | None, int]:
        """``window(n)`` with the special days (holidays, away days: ``baselines.special_days``) masked
        as unknown, the kind of special day found (``"away"`` first) and how many days with data
        were masked.

        >>> from baselines.customer import CustomerConfig
        >>> from baselines.profile import OpenCycle, Profile
        >>> from baselines.rules.config import RulesConfig
        >>> p = Profile.new("c"); p.newest_day = 738900
        >>> p.open_cycles.append(OpenCycle(738886, 738917, 40.0, 10.0))
        >>> p.final_start, p.final_days = 738890, [4.0] * 10
        >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
        >>> cust = CustomerConfig("c", away=((738898, 738898),))
        >>> RuleContext(p, cfg, rs, cust, None, 0.0, None, 738899, 0).judged_window(3)
        ([4.0, None, 4.0], 'away', 1)
        """
        w = self.window(n)
        c = self.customer
        if not c.has_special_days:
            return w, None, 0
        kind: str | None = None
        masked = 0
        first = self.as_of - n + 1
        for i in range(len(w)):
            if w[i] is None:  # no data that day: a missing day, whatever the calendar says
                continue
            k = special_day(c.region, c.away, first + i)
            if k is not None:
                w[i] = None
                masked += 1
                if kind != "away":
                    kind = k
        return w, kind, masked

    def level(self, as_of: int, n: int = 7) -> tuple[float, int] | None:
        """The weekday-adjusted median of the ``n`` days through ``as_of`` and how many were known."""
        return recent_level(self.profile, as_of, n, self.config.min_day_coverage)

    def prior_level(self, as_of: int, n: int) -> tuple[float, int] | None:
        """``level(as_of, n)`` without the special days (holidays, away days): the household's
        level before a window, where a holiday week is no habit to compare with."""
        c = self.customer
        if not c.has_special_days:
            return self.level(as_of, n)
        return recent_level(
            self.profile,
            as_of,
            n,
            self.config.min_day_coverage,
            lambda day: special_day(c.region, c.away, day) is not None,
        )

    def weather_adjustment(self, n: int) -> Adjustment | None:
        """The kWh/day the temperatures of the ``n`` days through ``as_of`` explain over the baseline
        period's (``baselines.weather_profile.window_adjustment``); None without a weather feed or a
        sufficient temperature response.

        >>> from baselines.customer import CustomerConfig
        >>> from baselines.profile import OpenCycle, Profile
        >>> from baselines.rules.config import RulesConfig
        >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
        >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
        >>> RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738899, 0).weather_adjustment(5)
        """
        if self.temps is None:
            return None
        return window_adjustment(self.profile, self.temps, self.as_of - n + 1, self.as_of + 1)

    def projection(self) -> tuple[float, float, float] | None:
        """(projected cycle kWh, cycle-to-date through ``as_of``, recent level) of ``cycle`` (computed once:
        several rules ask, and nothing they do changes it)."""
        proj = self.projected
        if proj is False:
            proj = self.projected = project_cycle(
                self.profile, self.cycle_index, self.as_of, self.config.min_day_coverage
            )
        return proj  # type: ignore[return-value]

    def same_period(self, cycle: OpenCycle) -> tuple[float, float] | None:
        """Pro-rata kWh and coverage of ``cycle``'s same period one year earlier (cached)."""
        return same_period_figures(self.profile, cycle.start, cycle.end)

    def cycle_to_date(self, index: int) -> float:
        """kWh so far of the open cycle ``index``, open days included."""
        return cycle_to_date(self.profile, index)

    # ------------------------------------------------------------------ outcomes
    def skip(self, rule: str, code: str, **numbers: float | int | str | None) -> None:
        """Record why ``rule`` could not be evaluated (a ``baselines.sufficiency.*`` code)."""
        self.profile.reasons[rule] = [code, numbers]
