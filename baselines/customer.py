"""The customer facts the domain needs (built from the registry's CustomerRecord).

>>> from meterwatch.contracts import CustomerRecord
>>> c = CustomerConfig.from_record(CustomerRecord(customer_id="c1", read_day=5, timezone="Europe/London"))
>>> c.read_day, c.cycle_months, c.tz.key
(5, 1, 'Europe/London')
>>> rec = CustomerRecord(customer_id="c2", tariff_plan="cn-js-residential",
...                      budget={"amount": 200, "currency": "CNY"})
>>> c2 = CustomerConfig.from_record(rec); c2.tariff_plan, str(c2.budget.amount)
('cn-js-residential', '200')

``max_kw`` (the meter's rating) bounds every reading (``baselines.readings.kwh_implausible``);
``None``: the rules' per-tariff default (``RulesConfig.max_kw_by_tariff``). ``register_digits``
is the register's width: a register read that goes backwards counts across the wrap at
``10**register_digits`` when that is plausible (``baselines.readings.register_rollover``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from baselines.cycles import zone
from baselines.readings import MAX_RATING_KW
from meterwatch.contracts import Budget, CustomerRecord


@dataclass(frozen=True, slots=True)
class CustomerConfig:
    """Immutable per-customer configuration used by the engine."""

    customer_id: str
    read_day: int = 1
    cycle_months: int = 1
    timezone: str = "Asia/Shanghai"
    tariff: str = "residential"
    occupancy: str = "unknown"
    language: str = "zh-CN"
    manager_id: str | None = None
    meter_ids: tuple[str, ...] = ()
    arrears_amount: float = 0.0
    arrears_count: int = 0
    complaints_count: int = 0
    tariff_plan: str | None = None  # the plan id in the tariff catalogue (None: the tariff's default)
    budget: Budget | None = None  # the customer's budget per billing cycle (budget alerts)
    max_kw: float | None = None
    register_digits: int | None = None
    region: str | None = None  # public-holiday calendar (baselines.special_days); None: none
    away: tuple[tuple[int, int], ...] = ()  # declared away periods: (first, last day) ordinals
    occupant_since: int | None = None  # the latest move-in day (ordinal): baselines.occupancy
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    #: what the ring's special days derive from (region, away periods, move-in); None: nothing
    calendar_key: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.read_day <= 28:
            raise ValueError(f"read_day must be 1-28, got {self.read_day}")
        if self.cycle_months not in (1, 2):
            raise ValueError(f"cycle_months must be 1 or 2, got {self.cycle_months}")
        if self.max_kw is not None and not (math.isfinite(self.max_kw) and 0 < self.max_kw <= MAX_RATING_KW):
            raise ValueError(f"max_kw must be > 0 and at most {MAX_RATING_KW:g}, got {self.max_kw}")
        if self.register_digits is not None and not 4 <= self.register_digits <= 10:
            raise ValueError(f"register_digits must be 4-10, got {self.register_digits}")
        object.__setattr__(self, "tz", zone(self.timezone))
        key = None
        if self.region is not None or self.away or self.occupant_since is not None:
            key = f"{self.region or ''};{self.away};{self.occupant_since or ''}"
        object.__setattr__(self, "calendar_key", key)

    @property
    def has_special_days(self) -> bool:
        """Whether any day can be special (a holiday region or an away period: ``baselines.special_days``)."""
        return self.region is not None or bool(self.away)

    @classmethod
    def from_record(cls, rec: CustomerRecord) -> CustomerConfig:
        """Build from the `customers` topic model (a rating above ``MAX_RATING_KW`` is capped there).

        >>> from meterwatch.contracts import CustomerRecord
        >>> CustomerConfig.from_record(CustomerRecord(customer_id="c9", meter_ids=["m1"])).meter_ids
        ('m1',)
        >>> c = CustomerConfig.from_record(CustomerRecord(customer_id="c9", max_kw=1e300, register_digits=5))
        >>> c.max_kw, c.register_digits
        (1000000.0, 5)
        >>> away = [{"start": "2024-02-08", "end": "2024-02-09"}]
        >>> c = CustomerConfig.from_record(CustomerRecord(customer_id="c9", region="CN", away=away))
        >>> c.region, c.away, c.has_special_days
        ('CN', ((738924, 738925),), True)
        """
        return cls(
            customer_id=rec.customer_id,
            read_day=rec.read_day,
            cycle_months=rec.cycle_months,
            timezone=rec.timezone,
            tariff=rec.tariff,
            occupancy=rec.occupancy,
            language=rec.language,
            manager_id=rec.manager_id,
            meter_ids=tuple(rec.meter_ids),
            arrears_amount=rec.arrears_amount,
            arrears_count=rec.arrears_count,
            complaints_count=rec.complaints_count,
            tariff_plan=rec.tariff_plan,
            budget=rec.budget,
            max_kw=None if rec.max_kw is None else min(rec.max_kw, MAX_RATING_KW),
            register_digits=rec.register_digits,
            region=rec.region,
            away=tuple((a.start.toordinal(), a.end.toordinal()) for a in rec.away),
            occupant_since=None if rec.occupant_since is None else rec.occupant_since.toordinal(),
        )

    @classmethod
    def default(cls, customer_id: str, timezone: str = "Asia/Shanghai") -> CustomerConfig:
        """A customer with no registry entry yet (read day 1, monthly).

        >>> CustomerConfig.default("c1").read_day
        1
        """
        return cls(customer_id=customer_id, timezone=timezone)
