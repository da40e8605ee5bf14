"""The domain entry point: readings in, profile and alerts out (a facade over the domain modules).

The same ``Engine`` serves the stream worker, the API (``snapshot``) and the
backtest. It is pure: no I/O, no clock unless given one. The work is done by:

* ``baselines.fold`` (with ``late_window``, ``register``, ``cycle_book``,
  ``baseline_stats``): the per-customer fold, readings -> open days -> final
  days -> billing cycles and baseline statistics;
* ``baselines.rules.evaluate``: the rules, once per customer and day (and
  ``same_period_reached`` on the reading that crosses it);
* ``baselines.alerts``: findings -> moderated alerts with their texts;
* ``baselines.views``: snapshot and segment features; ``baselines.history``:
  bootstrap rows.

Alert ids are deterministic (``alert_id``); a rule fires at most once per
customer and cycle, so ``process`` is idempotent under redelivery.

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> eng = Engine()
>>> cust = CustomerConfig("c1", timezone="Europe/London")
>>> p = Profile.new("c1")
>>> for i in range(40):
...     p = eng.process(p, Reading.daily(dt.date(2024, 1, 1) + dt.timedelta(days=i), 8.0), cust).profile
>>> res = eng.process(p, Reading.daily(dt.date(2024, 2, 10), 8.0), cust)
>>> res.duplicate, res.rejected, res.alerts
(False, None, [])
>>> eng.process(res.profile, Reading.daily(dt.date(2024, 2, 10), 8.0), cust).duplicate
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from baselines import history, views
from baselines.alerts import alert_id
from baselines.billing import Tariffs
from baselines.customer import CustomerConfig
from baselines.fold import fold_inplace
from baselines.late_window import APPLIED, APPLIED_CLOSING, DayLocator
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules.config import RulesConfig
from baselines.rules.evaluate import Evaluator
from baselines.weather import Temperatures
from meterwatch.contracts import Alert, BaselineSnapshot, HistoryRow, Reason, SegmentRef

__all__ = ["Engine", "StepResult", "alert_id"]


class StepResult(NamedTuple):
    """What one reading did."""

    profile: Profile
    alerts: list[Alert]
    rejected: Reason | None
    duplicate: bool


class Engine:
    """Stateless rule engine; all state lives in the ``Profile`` values it returns."""

    def __init__(
        self,
        rules: RulesConfig | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        tariffs: Tariffs | None = None,
        weather: Temperatures | None = None,
    ) -> None:
        """``clock`` gives ``created_at`` of alerts; without one, ``created_at``
        equals ``triggered_by`` (deterministic, as the backtest wants).
        ``tariffs``: the catalogue and the default plans (``baselines.billing``);
        without it, the shipped catalogue and no defaults (customers naming a
        ``tariff_plan`` get money, the others none). ``weather``: the daily
        temperatures per region (``baselines.weather``); without it, no
        temperature response and the rules judge as they always did."""
        self.rules = rules if rules is not None else RulesConfig()
        self.tariffs = tariffs if tariffs is not None else Tariffs.default()
        self.weather = weather
        self._days = DayLocator()
        self._evaluator = Evaluator(self.rules, clock, self.tariffs, weather)

    def use_weather(self, weather: Temperatures) -> None:
        """Judge with these temperatures from now on (the stream worker's follower fills them).

        >>> from baselines.weather import Temperatures
        >>> eng = Engine(); eng.use_weather(Temperatures({})); eng.weather is not None
        True
        """
        self.weather = weather
        self._evaluator.weather = weather

    def process(
        self,
        profile: Profile,
        reading: Reading,
        customer: CustomerConfig,
        segment: SegmentRef | None = None,
        *,
        emit: bool = True,
    ) -> StepResult:
        """Apply one reading; return the new profile, alerts, rejection or duplicate flag.

        The input profile is not changed. ``emit=False`` updates the state but
        evaluates no rules (history loading).

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> p0 = Profile.new("c1")
        >>> res = Engine().process(p0, Reading.daily(dt.date(2024, 1, 1), 5.0), CustomerConfig("c1"))
        >>> p0.newest_day is None, res.profile.newest_day == dt.date(2024, 1, 1).toordinal()
        (True, True)
        """
        p = profile.clone()
        res = self.process_inplace(p, reading, customer, segment, emit=emit)
        if res.duplicate or res.rejected is not None:
            return StepResult(profile, [], res.rejected, res.duplicate)
        return res

    def process_inplace(
        self,
        p: Profile,
        reading: Reading,
        customer: CustomerConfig,
        segment: SegmentRef | None = None,
        *,
        emit: bool = True,
    ) -> StepResult:
        """Like ``process`` but changes ``p`` itself (faster; for a caller that owns ``p``).

        A rejected or duplicate reading leaves ``p`` unchanged.

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> p = Profile.new("c1")
        >>> _ = Engine().process_inplace(p, Reading.daily(dt.date(2024, 1, 1), 5.0), CustomerConfig("c1"))
        >>> p.open_days[dt.date(2024, 1, 1).toordinal()].kwh
        5.0
        """
        out = fold_inplace(p, reading, customer, self.rules, self._days, self.tariffs)
        if out is not APPLIED and out is not APPLIED_CLOSING:  # rejected, duplicate or provisional
            return StepResult(p, [], out.rejected, out.duplicate)
        if not emit:
            return StepResult(p, [], None, False)
        alerts = self._evaluator.after_reading(p, customer, segment, reading.ts, out is APPLIED_CLOSING)
        return StepResult(p, alerts, None, False)

    def load_history(
        self,
        profile: Profile,
        history_rows: Iterable[HistoryRow | Mapping[str, Any]],
        customer: CustomerConfig,
    ) -> Profile:
        """Bootstrap: add per-cycle or daily history; returns a new profile. No alerts.

        See ``baselines.history``.

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> cust = CustomerConfig("c1", timezone="UTC")
        >>> p = Engine().load_history(Profile.new("c1"),
        ...     [{"customer_id": "c1", "start": "2023-01-01", "end": "2023-01-31", "kwh": 250.0}], cust)
        >>> [(dt.date.fromordinal(c.start), c.kwh) for c in p.closed_cycles]
        [(datetime.date(2023, 1, 1), 250.0)]
        """
        return history.load_history(profile, history_rows, customer, self.rules, self._days)

    def snapshot(
        self,
        profile: Profile,
        customer: CustomerConfig,
        segment: SegmentRef | None,
        now: dt.datetime,
    ) -> BaselineSnapshot:
        """The Ops API's view of a profile (``GET /v1/customers/{id}/baseline``); see ``baselines.views``.

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> snap = Engine().snapshot(Profile.new("c1"), CustomerConfig("c1", timezone="UTC"), None,
        ...                          dt.datetime(2024, 5, 3, tzinfo=dt.UTC))
        >>> snap.cycle.start, snap.cycle.end, snap.cycle.cycle_to_date_kwh
        (datetime.date(2024, 5, 1), datetime.date(2024, 5, 31), 0.0)
        """
        return views.snapshot(profile, customer, segment, now, self.rules, self.tariffs)

    def snapshot_parts(
        self,
        profile: Profile,
        customer: CustomerConfig,
        segment: SegmentRef | None,
        now: dt.datetime,
        *,
        cycles: bool = True,
    ) -> dict[str, Any]:
        """``snapshot``'s fields as plain values (for ``baselines.views.snapshot_json``: ``cycles=False``).

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> from baselines.views import cycles_json, snapshot_json
        >>> eng, cust, p = Engine(), CustomerConfig("c1", timezone="UTC"), Profile.new("c1")
        >>> now = dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
        >>> body = snapshot_json(eng.snapshot_parts(p, cust, None, now, cycles=False), cycles_json(p))
        >>> body == eng.snapshot(p, cust, None, now).model_dump_json().encode()
        True
        """
        return views.snapshot_parts(profile, customer, segment, now, self.rules, self.tariffs, cycles=cycles)

    def segment_features(self, profile: Profile, customer: CustomerConfig) -> dict[str, float]:
        """Named, stable features for the online segmenter; see ``baselines.views.segment_features``.

        >>> from baselines.customer import CustomerConfig
        >>> f = Engine().segment_features(Profile.new("c1"), CustomerConfig("c1", occupancy="rented"))
        >>> sorted(f)[:3], f["rented"]
        (['arrears_amount', 'arrears_count', 'complaints_count'], 1.0)
        """
        return views.segment_features(profile, customer)
