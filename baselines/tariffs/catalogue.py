"""The tariff catalogue: pydantic models of the versioned JSON file, and its loading.

A catalogue (``schema_version`` 1) is a list of plans. A plan has an id, a name
in zh-CN and en, a currency, a ``source`` (where its figures come from), how its
tiers are counted (``tier_period``: ``none``, ``cycle`` or ``year`` with the
``tariff_year_start``), and effective-dated price ``versions``: the version in
force on a day is the last one whose ``effective_from`` is on or before it.
Every model forbids unknown fields, so a typo is an error, not a silent default.

Loading is pure: :func:`load_catalogue` takes a path or the bytes of a file;
:func:`default_catalogue` reads the catalogue shipped with the package.
``MW_TARIFFS_FILE`` (``Settings.tariffs_file``) names a file that replaces it.

>>> cat = default_catalogue()
>>> cat.plan("cn-js-residential").tier_period
'year'
>>> cat.plan("nope")
Traceback (most recent call last):
...
baselines.tariffs.catalogue.UnknownPlanError: unknown tariff plan 'nope'
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from decimal import Decimal
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from baselines.tariffs.compiled import CompiledPlan, compile_plan

SCHEMA_VERSION = 1
DEFAULT_CATALOGUE = "default_catalogue.json"

#: a price per kWh or per day, in the plan's currency (at most 6 decimals: exact in micro-units)
Price = Annotated[Decimal, Field(ge=0, decimal_places=6, allow_inf_nan=False)]
#: a tier limit in kWh (at most 3 decimals: exact in Wh)
LimitKwh = Annotated[Decimal, Field(gt=0, decimal_places=3, allow_inf_nan=False)]
#: a share of a day's consumption (at most 4 decimals)
Share = Annotated[Decimal, Field(ge=0, le=1, decimal_places=4, allow_inf_nan=False)]
PeriodName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
PlanId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class UnknownPlanError(LookupError):
    """A plan id that the catalogue does not have.

    >>> UnknownPlanError("x").plan_id
    'x'
    """

    def __init__(self, plan_id: str) -> None:
        super().__init__(plan_id)
        self.plan_id = plan_id

    def __str__(self) -> str:
        return f"unknown tariff plan {self.plan_id!r}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Names(_Model):
    """A name per language."""

    zh_CN: Annotated[str, StringConstraints(min_length=1)] = Field(alias="zh-CN")
    en: Annotated[str, StringConstraints(min_length=1)]


class FlatEnergy(_Model):
    """One price for every kWh."""

    kind: Literal["flat"]
    price: Price


class TouPeriod(_Model):
    """A time-of-use period: the local hours ``[start, end)`` it covers and its price."""

    name: PeriodName
    label: Names
    hours: list[tuple[Annotated[int, Field(ge=0, le=23)], Annotated[int, Field(ge=1, le=24)]]] = Field(
        min_length=1
    )
    price: Price

    @model_validator(mode="after")
    def _ranges(self) -> TouPeriod:
        for start, end in self.hours:
            if start >= end:
                raise ValueError(f"period {self.name!r}: hour range [{start}, {end}) is empty")
        return self


class SharesFallback(_Model):
    """Daily/register data: split each day's kWh into the periods by fixed shares."""

    kind: Literal["shares"]
    shares: dict[PeriodName, Share]


class FlatFallback(_Model):
    """Daily/register data: charge each kWh at one price (e.g. the plan's non-TOU price)."""

    kind: Literal["flat"]
    price: Price


class TouEnergy(_Model):
    """Peak/flat/valley prices by local hour, with the fallback for days without interval data."""

    kind: Literal["tou"]
    periods: list[TouPeriod] = Field(min_length=2)
    fallback: Annotated[SharesFallback | FlatFallback, Field(discriminator="kind")]

    @model_validator(mode="after")
    def _cover_the_day(self) -> TouEnergy:
        names = [p.name for p in self.periods]
        if len(set(names)) != len(names):
            raise ValueError(f"period names must be unique, got {names}")
        owner: dict[int, str] = {}
        for p in self.periods:
            for start, end in p.hours:
                for h in range(start, end):
                    if h in owner:
                        raise ValueError(f"hour {h} is in both {owner[h]!r} and {p.name!r}")
                    owner[h] = p.name
        missing = sorted(set(range(24)) - owner.keys())
        if missing:
            raise ValueError(f"hours {missing} are in no period: the periods must cover 0-24")
        if isinstance(self.fallback, SharesFallback):
            if set(self.fallback.shares) != set(names):
                raise ValueError(f"fallback shares must name exactly the periods {names}")
            total = sum(self.fallback.shares.values(), Decimal(0))
            if total != 1:
                raise ValueError(f"fallback shares must sum to 1, got {total}")
        return self


class TierStep(_Model):
    """One tier: consumption in the tier period up to ``up_to_kwh`` (``null``: no limit)
    pays ``surcharge`` per kWh on top of the energy price (0 for the first tier)."""

    up_to_kwh: LimitKwh | None
    surcharge: Price


class PriceVersion(_Model):
    """The prices in force from ``effective_from`` until the next version."""

    effective_from: dt.date
    energy: Annotated[FlatEnergy | TouEnergy, Field(discriminator="kind")]
    tiers: list[TierStep] | None = None
    standing_charge_per_day: Price = Decimal(0)

    @model_validator(mode="after")
    def _tiers(self) -> PriceVersion:
        if self.tiers is None:
            return self
        if not self.tiers:
            raise ValueError("tiers: give at least one step, or null for no tiers")
        limits = [t.up_to_kwh for t in self.tiers]
        if limits[-1] is not None:
            raise ValueError("tiers: the last step must have up_to_kwh null (no upper limit)")
        bounded = [x for x in limits[:-1] if x is not None]
        if len(bounded) != len(limits) - 1:
            raise ValueError("tiers: only the last step may have up_to_kwh null")
        if any(b <= a for a, b in itertools.pairwise(bounded)):
            raise ValueError(f"tiers: up_to_kwh must increase strictly, got {[str(x) for x in bounded]}")
        return self


class Plan(_Model):
    """One tariff plan (see the module doc)."""

    id: PlanId
    name: Names
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    customer_class: Literal["residential", "commercial", "industrial"]
    tier_period: Literal["none", "cycle", "year"] = "none"
    tariff_year_start: Annotated[
        str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")
    ] = "01-01"
    source: Annotated[str, StringConstraints(min_length=1)]
    notes: str = ""
    versions: list[PriceVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions(self) -> Plan:
        days = [v.effective_from for v in self.versions]
        if any(b <= a for a, b in itertools.pairwise(days)):
            raise ValueError("versions: effective_from must increase strictly")
        for v in self.versions:
            if (v.tiers is None) != (self.tier_period == "none"):
                raise ValueError(
                    f"version {v.effective_from}: tier_period is {self.tier_period!r}, "
                    + ("so tiers must be null" if self.tier_period == "none" else "so tiers are required")
                )
        return self

    def model_post_init(self, context: object, /) -> None:
        _ = self.compiled  # compiled once, at validation

    @cached_property
    def compiled(self) -> CompiledPlan:
        """The integer form the bill maths uses (a plain attribute after the first access)."""
        return compile_plan(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose integer form is rebuilt from its own fields (not the original's)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("compiled", None)
        return copy

    def version_on(self, day: dt.date) -> PriceVersion:
        """The version in force on ``day``.

        >>> p = default_catalogue().plan("uk-london-standard")
        >>> p.version_on(dt.date(2013, 6, 1)).effective_from
        datetime.date(2012, 11, 1)
        """
        return self.versions[self.compiled.version_index(day.toordinal())]


class Catalogue(_Model):
    """A set of plans, unique by id."""

    schema_version: Literal[1]
    plans: list[Plan]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        ids = [p.id for p in self.plans]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate plan ids: {dup}")
        return self

    def plan(self, plan_id: str) -> Plan:
        """The plan ``plan_id``; :class:`UnknownPlanError` when there is none."""
        for p in self.plans:
            if p.id == plan_id:
                return p
        raise UnknownPlanError(plan_id)

    def ids(self) -> list[str]:
        """Every plan id, in file order.

        >>> "uk-london-standard" in default_catalogue().ids()
        True
        """
        return [p.id for p in self.plans]


def load_catalogue(source: Path | bytes) -> Catalogue:
    """Parse and validate a catalogue file (a path, or its bytes).

    Raises ``pydantic.ValidationError`` for a malformed file.

    >>> load_catalogue(b'{"schema_version": 1, "plans": []}').plans
    []
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return Catalogue.model_validate_json(data)


@cache
def default_catalogue() -> Catalogue:
    """The catalogue shipped with meterwatch (``baselines/tariffs/default_catalogue.json``)."""
    return load_catalogue(resources.files("baselines.tariffs").joinpath(DEFAULT_CATALOGUE).read_bytes())


def catalogue_or_default(path: Path | None) -> Catalogue:
    """``MW_TARIFFS_FILE`` semantics: the file when given, else the shipped catalogue."""
    return default_catalogue() if path is None else load_catalogue(path)
