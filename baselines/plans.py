"""Which tariff plan prices which day: the catalogue with defaults, and a customer's plans over time.

``Tariffs`` is the catalogue plus a default plan per tariff category
(``MW_DEFAULT_TARIFF_PLANS``): a customer's plan is its registry ``tariff_plan``,
else the default of its ``tariff``, else none (no money).

A plan change applies from the **start of the next billing cycle** after the
engine first sees it (as utilities apply a tariff change from the next meter
reading): no cycle is ever priced under two plans, and the open cycle keeps the
plan it started with. ``Profile.plans`` records ``(from_day, plan_id)`` (the
first entry prices every earlier day, ``""``: no plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from baselines.customer import CustomerConfig
from baselines.profile import Profile
from baselines.tariffs import Catalogue, Plan, UnknownPlanError, catalogue_or_default, default_catalogue

# plan changes kept in Profile.plans (changes are rare; the oldest entry prices all earlier days)
MAX_PLANS = 6
_NO_PLAN = ""


@dataclass(frozen=True)
class Tariffs:
    """The tariff catalogue and the default plan per tariff category (checked: every id exists).

    >>> t = Tariffs.default({"residential": "uk-london-standard"})
    >>> from baselines.customer import CustomerConfig
    >>> t.plan_id_for(CustomerConfig("c")), t.plan_id_for(CustomerConfig("c", tariff="commercial"))
    ('uk-london-standard', None)
    >>> Tariffs.default({"residential": "nope"})
    Traceback (most recent call last):
    ...
    baselines.tariffs.catalogue.UnknownPlanError: unknown tariff plan 'nope'
    """

    catalogue: Catalogue
    defaults: Mapping[str, str] = field(default_factory=dict)
    _plans: dict[str, Plan] = field(init=False, repr=False, compare=False)
    _bounds: dict[str, tuple[float, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plans = {p.id: p for p in self.catalogue.plans}
        for plan_id in self.defaults.values():
            if plan_id not in plans:
                raise UnknownPlanError(plan_id)
        object.__setattr__(self, "_plans", plans)
        object.__setattr__(self, "_bounds", {p.id: _price_bounds(p) for p in self.catalogue.plans})

    @classmethod
    def default(cls, defaults: Mapping[str, str] | None = None) -> Tariffs:
        """The shipped catalogue with ``defaults``."""
        return cls(default_catalogue(), dict(defaults or {}))

    @classmethod
    def load(cls, path: Path | None, defaults: Mapping[str, str] | None = None) -> Tariffs:
        """``MW_TARIFFS_FILE`` (None: the shipped catalogue) with ``MW_DEFAULT_TARIFF_PLANS``.

        Raises ``OSError``/``pydantic.ValidationError`` for a bad file and
        :class:`UnknownPlanError` for a default the catalogue lacks: a service stops at start-up.

        >>> Tariffs.load(None, {"commercial": "cn-commercial-flat"}).defaults
        {'commercial': 'cn-commercial-flat'}
        """
        return cls(catalogue_or_default(path), dict(defaults or {}))

    def plan_id_for(self, customer: CustomerConfig) -> str | None:
        """The plan the registry names for ``customer`` now (its own, else its tariff's default)."""
        return customer.tariff_plan or self.defaults.get(customer.tariff)

    def plan(self, plan_id: str) -> Plan | None:
        """The plan ``plan_id`` (None: not in the catalogue)."""
        return self._plans.get(plan_id)

    def knows(self, plan_id: str) -> bool:
        """Whether the catalogue has ``plan_id`` (the registry path dead-letters unknown ones).

        >>> Tariffs.default().knows("cn-js-residential"), Tariffs.default().knows("x")
        (True, False)
        """
        return plan_id in self._plans

    def max_prices(self, plan_id: str) -> tuple[float, float]:
        """(highest price per kWh, tier surcharge included; highest standing charge per day), any version."""
        return self._bounds[plan_id]


def _price_bounds(plan: Plan) -> tuple[float, float]:
    per_kwh = per_day = 0
    for v in plan.compiled.versions:
        energy = max((v.flat_price or 0, v.fallback_price or 0, *v.period_prices))
        per_kwh = max(per_kwh, energy + max(v.tier_surcharges))
        per_day = max(per_day, v.standing)
    return per_kwh / 1e6, per_day / 1e6


# ---------------------------------------------------------------------------------- plan history
def note_plan(p: Profile, customer: CustomerConfig, tariffs: Tariffs) -> None:
    """Record the customer's current plan in ``p.plans`` (the engine calls it once per evaluation day).

    The first plan seen prices every earlier day; a change applies from the end of the
    running cycle (a change seen again before then replaces the pending one).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle, Profile
    >>> t, p = Tariffs.default(), Profile.new("c")
    >>> p.open_cycles.append(OpenCycle(100, 130, 0.0, 0.0))
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-js-residential"), t)
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-fj-residential-monthly"), t); p.plans
    [(0, 'cn-js-residential'), (130, 'cn-fj-residential-monthly')]
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-js-residential"), t); p.plans
    [(0, 'cn-js-residential')]
    """
    plan_id = tariffs.plan_id_for(customer) or _NO_PLAN
    hist = p.plans
    if hist and hist[-1][1] == plan_id:
        return
    if not hist:
        if plan_id:
            hist.append((0, plan_id))
            p.money_epoch += 1  # (tier_crossing's mark)
        return
    p.money_epoch += 1
    start = p.open_cycles[-1].end if p.open_cycles else 0
    if len(hist) > 1 and hist[-1][0] >= start:  # a change not in force yet: replaced
        hist.pop()
        if hist[-1][1] == plan_id:
            return
    hist.append((start, plan_id))
    del hist[:-MAX_PLANS]


def plan_on(p: Profile, customer: CustomerConfig, tariffs: Tariffs, day: int) -> Plan | None:
    """The plan pricing the day ``day`` (an ordinal): from the profile's history, else the current one.

    >>> from baselines.customer import CustomerConfig
    >>> p = Profile.new("c"); p.plans = [(0, "cn-js-residential"), (130, "uk-london-standard")]
    >>> t, cust = Tariffs.default(), CustomerConfig("c")
    >>> plan_on(p, cust, t, 129).id, plan_on(p, cust, t, 130).id, plan_on(Profile.new("c"), cust, t, 1)
    ('cn-js-residential', 'uk-london-standard', None)
    """
    hist = p.plans
    if not hist:
        plan_id = tariffs.plan_id_for(customer)
    else:
        plan_id = hist[0][1]
        for start, pid in hist:
            if start > day:
                break
            plan_id = pid
    return tariffs.plan(plan_id) if plan_id else None
