"""Pydantic v2 models of the external contracts (../shared/CONTRACTS.md).

These are the boundary shapes: what arrives on `meter-readings` and
`customers`, what leaves on `alerts` and `meter-readings.dlq`, and what the
Ops API returns for a baseline. Fields may be added; none may be renamed or
dropped without a versioned path.

>>> r = MeterReading.model_validate({"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": 0.4})
>>> r.interval_s, r.quality
(1800, 'actual')
>>> MeterReading.model_validate({"meter_id": "m1", "ts": "2024-01-01T00:30:00"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for MeterReading
...

Readings are strict about JSON types (docs/stream.md, "What AMI integrators must send"): ``kwh``
and ``register_kwh`` are JSON numbers (not strings, not booleans), ``ts`` is an ISO-8601 string
with a UTC offset (not epoch seconds), ``interval_s`` a JSON integer.

>>> MeterReading.model_validate_json(b'{"meter_id": "m1", "ts": "2024-01-01T00:30:00Z", "kwh": true}')
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for MeterReading
kwh
  kwh must be a JSON number, not a boolean [type=strict_number, ...
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_READING_BYTES = 64 * 1024
#: a tariff plan id (as in the catalogue, baselines/tariffs)
PlanId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: an amount as bills show it: exact, 0.01 of the currency; a JSON number on the wire
Amount = Annotated[
    Decimal,
    Field(decimal_places=2, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
#: a price per kWh (up to 6 decimals); a JSON number on the wire
UnitPrice = Annotated[
    Decimal,
    Field(decimal_places=6, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]


class Budget(BaseModel):
    """A customer's budget per billing cycle (registry field ``budget``), in the plan's currency.

    >>> Budget(amount="200", currency="CNY").model_dump_json()
    '{"amount":200.0,"currency":"CNY"}'
    >>> Budget(amount="0", currency="CNY")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Budget
    ...
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    amount: Annotated[Amount, Field(gt=0, le=Decimal("1000000000"))]
    currency: Currency


def check_region(value: str) -> str:
    """A region the public-holiday calendar (the ``holidays`` package) knows.

    >>> check_region("GB-ENG"), check_region("CN")
    ('GB-ENG', 'CN')
    >>> check_region("GB-XX")
    Traceback (most recent call last):
    ...
    ValueError: region 'GB-XX': GB has no subdivision 'XX' in the holiday calendar (ENG, NIR, SCT, WLS)
    """
    import holidays  # the calendar library (kept: the `holidays` package); imported on first use

    country, _, subdiv = value.partition("-")
    known = holidays.list_supported_countries()
    if country not in known:
        raise ValueError(f"region {value!r}: no public-holiday calendar for country {country!r}")
    if subdiv and subdiv not in known[country]:
        subs = ", ".join(known[country]) or "none"
        raise ValueError(
            f"region {value!r}: {country} has no subdivision {subdiv!r} in the holiday calendar ({subs})"
        )
    return value


#: a holiday region: an ISO 3166-1 country code, optionally with a subdivision ("CN", "GB-ENG")
Region = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"), AfterValidator(check_region)
]
#: the most away periods a record keeps (the customer's declared absences)
MAX_AWAY_PERIODS = 24


class AwayPeriod(BaseModel):
    """A period the customer declared the home empty (registry field ``away``): first and last day,
    inclusive, in the customer's time zone. Drop alerts are muted for it and its days stay out
    of the baseline.

    >>> AwayPeriod(start="2024-02-08", end="2024-02-18").end
    datetime.date(2024, 2, 18)
    >>> AwayPeriod(start="2024-02-18", end="2024-02-08")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AwayPeriod
    ...
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> AwayPeriod:
        if self.end < self.start:
            raise ValueError(f"away period ends ({self.end}) before it starts ({self.start})")
        if (self.end - self.start).days > 366:
            raise ValueError("an away period is at most a year (366 days)")
        return self


#: a phone number in E.164 form (the customer's and the landlord's)
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]


class Landlord(BaseModel):
    """The landlord of a rented home (registry field ``landlord``; used when ``occupancy`` is
    ``rented``): the manager's notification names them, and ``MW_LANDLORD_SMS_RULES`` alerts
    send them a short SMS without the tenant's figures (docs/notifier.md, "Rented homes").

    >>> Landlord(name=" 王先生 ", phone="+8613900139000").name
    '王先生'
    >>> Landlord(name="Mr Lee", phone="0790")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Landlord
    phone
    ...
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    phone: Phone


class MeterReading(BaseModel):
    """One message on `meter-readings`. Unknown extra fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    meter_id: Id
    customer_id: Id | None = None
    ts: AwareDatetime
    kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    interval_s: Annotated[int, Field(gt=0)] = 1800
    register_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    quality: Literal["actual", "estimated"] = "actual"

    @field_validator("kwh", "register_kwh", mode="before")
    @classmethod
    def _json_number(cls, v: object, info: ValidationInfo) -> object:
        # strict: "0.25" and true are integrator bugs, not readings (pydantic's lax mode takes them)
        if isinstance(v, bool | str):
            kind = "boolean" if isinstance(v, bool) else "string"
            raise PydanticCustomError(
                "strict_number",
                "{field} must be a JSON number, not a {kind}",
                {"field": info.field_name, "kind": kind},
            )
        return v

    @field_validator("ts", mode="before")
    @classmethod
    def _ts_text(cls, v: object) -> object:
        if isinstance(v, int | float):  # bool included
            raise PydanticCustomError(
                "strict_datetime", "ts must be an ISO-8601 string with a UTC offset, not a number"
            )
        return v

    @field_validator("interval_s", mode="before")
    @classmethod
    def _json_integer(cls, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, int):
            raise PydanticCustomError("strict_int", "interval_s must be a JSON integer (seconds)")
        return v

    @model_validator(mode="after")
    def _one_of_kwh_or_register(self) -> MeterReading:
        if (self.kwh is None) == (self.register_kwh is None):
            raise ValueError("exactly one of 'kwh' and 'register_kwh' is required")
        return self


Temperature = Annotated[float, Field(ge=-90.0, le=60.0, allow_inf_nan=False)]


class WeatherDay(BaseModel):
    """One value on the `weather` topic (key: region): a region's daily temperatures.

    CONTRACTS.md: ``region``, ``day``, ``temp_mean_c``, optional ``temp_min_c`` and
    ``temp_max_c``; without ``temp_mean_c`` the mean is taken as the middle of the two.
    ``region`` is the customers' ``region`` it applies to, or ``*`` for every customer whose
    region has none (``baselines.weather``).

    >>> WeatherDay.model_validate({"region": "GB-ENG", "day": "2013-12-18", "temp_mean_c": -3.5}).day
    datetime.date(2013, 12, 18)
    >>> w = WeatherDay.model_validate({"region": "*", "day": "2013-12-18", "temp_min_c": -5, "temp_max_c": 2})
    >>> w.temp_mean_c, w.temp_max_c
    (-1.5, 2.0)
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    region: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^(\*|[A-Z]{2}(-[A-Z0-9]{1,3})?)$")]
    day: dt.date
    temp_mean_c: Temperature
    temp_min_c: Temperature | None = None
    temp_max_c: Temperature | None = None

    @model_validator(mode="before")
    @classmethod
    def _mean_from_min_max(cls, v: object) -> object:
        if isinstance(v, dict) and v.get("temp_mean_c") is None:
            lo, hi = v.get("temp_min_c"), v.get("temp_max_c")
            if (
                isinstance(lo, int | float)
                and isinstance(hi, int | float)
                and not isinstance(lo, bool)
                and not isinstance(hi, bool)
                and math.isfinite(lo)
                and math.isfinite(hi)
            ):  # else temp_mean_c is reported missing
                v = {**v, "temp_mean_c": (lo + hi) / 2}
        return v


class CustomerRecord(BaseModel):
    """One value on the compacted `customers` topic (key: customer_id)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: Id
    meter_ids: list[Id] = Field(default_factory=list)
    name: str = ""
    phone: Phone | None = None
    manager_id: Id | None = None
    tariff: Literal["residential", "commercial", "industrial"] = "residential"
    occupancy: Literal["owner", "rented", "unknown"] = "unknown"
    read_day: Annotated[int, Field(ge=1, le=28)] = 1
    cycle_months: Literal[1, 2] = 1
    timezone: str = "Asia/Shanghai"
    language: Literal["zh-CN", "en"] = "zh-CN"
    sms_opt_in: bool = False
    arrears_amount: Annotated[float, Field(ge=0)] = 0.0
    arrears_count: Annotated[int, Field(ge=0)] = 0
    complaints_count: Annotated[int, Field(ge=0)] = 0
    #: the customer's plan in the tariff catalogue (docs/money.md); None: the default of its
    #: ``tariff`` category, if one is configured (``MW_DEFAULT_TARIFF_PLANS``)
    tariff_plan: PlanId | None = None
    #: a budget per billing cycle, asked for by the customer (budget alerts are solicited)
    budget: Budget | None = None
    #: the meter's rating in kW: an interval reading above max_kw x its hours is dead-lettered
    #: (``kwh_implausible``). None: the worker's per-tariff / default setting applies.
    max_kw: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    #: register width in digits (CONTRACTS.md additions), for counting across a rollover
    register_digits: Annotated[int, Field(ge=1, le=15)] | None = None
    #: date of the latest move-in (CONTRACTS.md additions; set from the workbench, issue #15 uses it)
    occupant_since: dt.date | None = None
    #: the public-holiday calendar of the home (issue #15: holiday days neither raise surge or
    #: drop alerts nor enter the baseline); None: no calendar, today's behaviour exactly
    region: Region | None = None
    #: periods the customer declared the home empty (drop alerts muted, days out of the baseline)
    away: Annotated[list[AwayPeriod], Field(max_length=MAX_AWAY_PERIODS)] = Field(default_factory=list)
    #: the landlord of a rented home (used only while ``occupancy`` is ``rented``)
    landlord: Landlord | None = None


class CycleRef(BaseModel):
    start: dt.date
    end: dt.date


class Observed(BaseModel):
    cycle_to_date_kwh: float | None = None
    same_period_kwh: float | None = None
    baseline_daily_kwh: float | None = None
    recent_daily_kwh: float | None = None
    projected_cycle_kwh: float | None = None
    ratio: float | None = None


class SegmentRef(BaseModel):
    id: int | None = None
    label: str | None = None
    kind: str | None = None  # ordinary | premium | potential | sensitive | risk (drives notifier policies)


class Explanation(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    zh_CN: str = Field(alias="zh-CN")
    en: str


class Reason(BaseModel):
    """A named reason with the numbers behind it (why a rule fired or was skipped)."""

    code: str
    message: str = ""
    numbers: dict[str, float | int | str | None] = Field(default_factory=dict)


class MoneyTier(BaseModel):
    """Where the customer stands in the tiers of the plan (Alert.money.tier)."""

    model_config = ConfigDict(extra="ignore")

    index: Annotated[int, Field(ge=1)]  # the tier the customer is in (1 = the lowest)
    count: Annotated[int, Field(ge=1)]
    period: Literal["cycle", "year"]  # what the tier consumption counts: the billing cycle or tariff year
    period_kwh: float  # consumption of the tier period so far
    next_at_kwh: float | None = None  # period consumption where the next tier starts (None: top tier)
    next_on: dt.date | None = None  # the day the next tier is reached at the current pace
    price_step: UnitPrice | None = None  # the next tier's extra price per kWh
    #: the first day of the tier period (the tariff year, or the billing cycle for monthly tiers)
    period_start: dt.date | None = Field(default=None, exclude_if=lambda v: v is None)


class Money(BaseModel):
    """The bill figures of an alert (CONTRACTS.md: Alert.money), in the plan's currency.

    Amounts are rounded as bills round (0.01, see docs/money.md). ``same_period``
    is last year's same-period cycle as billed then (the prices in force then);
    ``extra_vs_same_period`` is ``projected - same_period``;
    ``same_period_at_current_prices`` prices last year's kWh like-for-like with
    today's prices (the change due to consumption alone is
    ``projected - same_period_at_current_prices``).

    >>> m = Money(currency="CNY", to_date=Decimal("52.00"), projected=Decimal("160.35"))
    >>> m.model_dump_json(exclude_none=True)
    '{"currency":"CNY","to_date":52.0,"projected":160.35}'
    """

    model_config = ConfigDict(extra="ignore")

    currency: Currency
    to_date: Amount
    projected: Amount | None = None
    same_period: Amount | None = None
    extra_vs_same_period: Amount | None = None
    tier: MoneyTier | None = None
    same_period_at_current_prices: Amount | None = None
    #: the customer's budget per cycle (budget alerts; absent without one)
    budget: Amount | None = Field(default=None, exclude_if=lambda v: v is None)


Rule = Literal[
    "same_period_reached",
    "projected_over_same_period",
    "sudden_increase",
    "sudden_increase_escalation",
    "sustained_drop",
]
Severity = Literal["info", "warning", "critical"]


class Alert(BaseModel):
    """One value on `alerts` (key: customer_id)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    alert_id: str
    customer_id: Id
    meter_ids: list[str] = Field(default_factory=list)
    rule: str
    severity: Severity = "warning"
    cycle: CycleRef
    observed: Observed
    segment: SegmentRef = Field(default_factory=SegmentRef)
    manager_id: str | None = None
    triggered_by: AwareDatetime
    created_at: AwareDatetime
    explanation: Explanation
    customer_facing: bool = True
    reasons: list[Reason] = Field(default_factory=list)
    schema_: int = Field(default=1, alias="schema")
    #: the bill figures next to the kWh facts (absent when the customer has no tariff plan)
    money: Money | None = Field(default=None, exclude_if=lambda v: v is None)
    #: the customer asked for this alert (a budget); counted apart from unsolicited alerts.
    #: Written only when true, so that alerts without money are byte-identical to before money
    solicited: bool = Field(default=False, exclude_if=lambda v: not v)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class DeadLetterError(BaseModel):
    code: str
    message: str
    field: str | None = None


class DeadLetterSource(BaseModel):
    topic: str
    partition: int
    offset: int


class DeadLetter(BaseModel):
    """One value on `meter-readings.dlq`."""

    error: DeadLetterError
    received_at: AwareDatetime
    source: DeadLetterSource
    raw: str
    raw_encoding: Literal["text", "base64"] = "text"


# --- Ops API read model -----------------------------------------------------------


class CycleNow(BaseModel):
    start: dt.date
    end: dt.date
    cycle_to_date_kwh: float
    days_elapsed: float
    projected_kwh: float | None = None


class SamePeriod(BaseModel):
    start: dt.date | None = None
    end: dt.date | None = None
    kwh: float | None = None
    coverage: float | None = None


class ClosedCycle(BaseModel):
    start: dt.date
    end: dt.date
    kwh: float
    coverage: float


class BaselineBlock(BaseModel):
    daily_kwh: float | None = None
    cycles: list[ClosedCycle] = Field(default_factory=list)


class MoneyNow(BaseModel):
    """The bill figures of the running cycle (BaselineSnapshot.money; docs/money.md).

    As of ``as_of``, the newest complete day (the figures change once a day; the
    snapshot's kWh ``cycle.cycle_to_date_kwh`` also counts the day in progress).
    ``same_period`` is last year's cycle as billed then; ``same_period_at_current_prices``
    the same kWh at today's prices (like-for-like); ``extra_vs_same_period`` is
    ``projected - same_period`` and ``extra_at_current_prices`` is
    ``projected - same_period_at_current_prices`` (the change due to consumption alone).
    """

    model_config = ConfigDict(extra="ignore")

    plan_id: str
    currency: Currency
    as_of: dt.date
    kwh_to_date: float
    to_date: Amount
    projected: Amount | None = None
    same_period: Amount | None = None
    same_period_at_current_prices: Amount | None = None
    extra_vs_same_period: Amount | None = None
    extra_at_current_prices: Amount | None = None
    tier: MoneyTier | None = None
    next_tier_kwh_to_go: float | None = None
    budget: Budget | None = None


class BaselineSnapshot(BaseModel):
    """What `GET /v1/customers/{customer_id}/baseline` returns (and what Redis holds)."""

    customer_id: Id
    as_of: AwareDatetime
    cycle: CycleNow
    same_period: SamePeriod = Field(default_factory=SamePeriod)
    baseline: BaselineBlock = Field(default_factory=BaselineBlock)
    segment: SegmentRef = Field(default_factory=SegmentRef)
    open_alerts: list[str] = Field(default_factory=list)
    manager_id: str | None = None
    recent_daily_kwh: float | None = None
    reasons: list[Reason] = Field(default_factory=list)
    processed_at: AwareDatetime | None = None
    #: the bill figures (absent when the customer has no tariff plan and no default applies)
    money: MoneyNow | None = Field(default=None, exclude_if=lambda v: v is None)


class SegmentSummary(BaseModel):
    """One entry of `GET /v1/segments`."""

    id: int
    label: str
    size: int
    centroid: dict[str, float] = Field(default_factory=dict)
    characteristics: list[str] = Field(default_factory=list)
    #: the segment's kind in the source documents' terms:
    #: ordinary | premium | potential | sensitive | risk (stable across label wording)
    kind: str | None = None
    #: the label per language: {"en": ..., "zh-CN": ...}
    labels: dict[str, str] = Field(default_factory=dict)


class HistoryRow(BaseModel):
    """One value on the internal history topic (`meterwatch bootstrap` -> worker).

    Either a daily total (``day``) or a whole billing cycle (``start``/``end``).
    Key: customer_id.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: Id
    day: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    coverage: Annotated[float, Field(ge=0, le=1)] = 1.0

    @model_validator(mode="after")
    def _day_or_cycle(self) -> HistoryRow:
        if (self.day is None) == (self.start is None or self.end is None):
            raise ValueError("give either 'day' or both 'start' and 'end'")
        return self


class SegmentFeatures(BaseModel):
    """One value on the internal segment-features topic (customer partition -> segmenter)."""

    customer_id: Id
    features: dict[str, float]
    ts: AwareDatetime


class SegmentAssignment(BaseModel):
    """One value on the internal segment-assignments topic (segmenter -> customer partition)."""

    customer_id: Id
    segment: SegmentRef
    model_version: int = 0
