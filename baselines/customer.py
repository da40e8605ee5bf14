"""The customer facts the domain needs (built from the registry's CustomerRecord).

>>> from meterwatch.contracts import CustomerRecord
>>> c = CustomerConfig.from_record(CustomerRecord(customer_id="c1", read_day=5, timezone="Europe/London"))
>>> c.read_day, c.cycle_months, c.tz.key
(5, 1, 'Europe/London')
>>> rec = CustomerRecord(customer_id="c2", tariff_plan="cn-js-residential",
...                      budget={"amount": 200, "currency": "CNY"})
>>> c2 = CustomerConfig.from_record(rec); c2.tariff_plan, str(c2.budget.amount)
('cn-js-residential', '200')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from baselines.cycles import zone
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
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.read_day <= 28:
            raise ValueError(f"read_day must be 1-28, got {self.read_day}")
        if self.cycle_months not in (1, 2):
            raise ValueError(f"cycle_months must be 1 or 2, got {self.cycle_months}")
        object.__setattr__(self, "tz", zone(self.timezone))

    @classmethod
    def from_record(cls, rec: CustomerRecord) -> CustomerConfig:
        """Build from the `customers` topic model.

        >>> from meterwatch.contracts import CustomerRecord
        >>> CustomerConfig.from_record(CustomerRecord(customer_id="c9", meter_ids=["m1"])).meter_ids
        ('m1',)
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
        )

    @classmethod
    def default(cls, customer_id: str, timezone: str = "Asia/Shanghai") -> CustomerConfig:
        """A customer with no registry entry yet (read day 1, monthly).

        >>> CustomerConfig.default("c1").read_day
        1
        """
        return cls(customer_id=customer_id, timezone=timezone)
