"""Offline backtest: the stream's rule engine over customers' readings, no Kafka, no Redis.

The domain driver only: :func:`run_customers` takes each customer's readings as an
already-parsed :class:`Series` (columns in time order) and returns the alerts and
counts. Reading files (CSV, Parquet, column names, dates) is the CLI's job:
``meterwatch.cli.feed`` turns a file into ``(id, Series)`` pairs, ``meterwatch backtest``
writes the alerts as JSON Lines. Nothing is sent anywhere.

>>> rows = [("c1", Series("daily", value=[5.0, 6.0, 6.0], day=[19723, 19724, 19724]))]
>>> res = run_customers(rows)
>>> res.rows, res.duplicates, res.customers
(3, 1, 1)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from baselines.billing import Tariffs
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Kind, Reading
from baselines.rules import RULES, SOLICITED_RULES, RulesConfig
from baselines.weather import Temperatures
from meterwatch.contracts import Alert, CustomerRecord

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass
class BacktestResult:
    """Counts and alerts of one run."""

    rows: int = 0
    customers: int = 0
    customer_cycles: int = 0
    rejected: int = 0
    duplicates: int = 0
    alerts: list[Alert] = field(default_factory=list)
    rejected_codes: Counter[str] = field(default_factory=Counter)
    profiles_bytes: int = 0
    cycles_by_customer: dict[str, int] = field(default_factory=dict)

    def solicited(self) -> int:
        """Alerts the customers asked for (budget), counted apart from the unsolicited ones.

        >>> BacktestResult().solicited()
        0
        """
        return sum(1 for a in self.alerts if a.solicited or a.rule in SOLICITED_RULES)

    def merge(self, other: BacktestResult) -> None:
        """Add the result of the customers that come after this one's (alerts and ids keep their order).

        >>> a, b = BacktestResult(rows=2, customers=1), BacktestResult(rows=3, customers=1)
        >>> b.rejected_codes["x"] += 1
        >>> a.merge(b); a.rows, a.customers, dict(a.rejected_codes)
        (5, 2, {'x': 1})
        """
        self.rows += other.rows
        self.customers += other.customers
        self.customer_cycles += other.customer_cycles
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        self.alerts.extend(other.alerts)
        self.rejected_codes.update(other.rejected_codes)
        self.profiles_bytes += other.profiles_bytes
        self.cycles_by_customer.update(other.cycles_by_customer)

    def per_rule(self) -> dict[str, int]:
        """Alerts per rule (every known rule present).

        >>> BacktestResult().per_rule()["sudden_increase"]
        0
        """
        c = Counter(a.rule for a in self.alerts)
        return {r: c.get(r, 0) for r in RULES}

    def summary(self) -> str:
        """The human summary printed at the end of ``meterwatch backtest``.

        >>> print(BacktestResult(rows=10).summary().splitlines()[0])
        rows 10  customers 0  customer-cycles 0  rejected 0  duplicates 0
        """
        cc = max(1, self.customer_cycles)
        lines = [
            f"rows {self.rows:,}  customers {self.customers:,}  customer-cycles {self.customer_cycles:,}  "
            f"rejected {self.rejected:,}  duplicates {self.duplicates:,}",
            f"{'rule':<28}{'alerts':>8}{'per 100 cust-cycles':>22}{'customer-facing':>17}",
        ]
        cf = Counter(a.rule for a in self.alerts if a.customer_facing)
        for rule, n in self.per_rule().items():
            lines.append(f"{rule:<28}{n:>8}{100.0 * n / cc:>22.2f}{cf.get(rule, 0):>17}")
        ncf = sum(1 for a in self.alerts if a.customer_facing and not a.solicited)
        lines.append(f"{'customer-facing, all rules':<28}{ncf:>8}{100.0 * ncf / cc:>22.2f}")
        nsol = sum(1 for a in self.alerts if a.solicited)
        lines.append(f"{'solicited (budget), apart':<28}{nsol:>8}{100.0 * nsol / cc:>22.2f}")
        with_money = sum(1 for a in self.alerts if a.money is not None)
        if with_money:
            lines.append(f"alerts with money: {with_money} of {len(self.alerts)}")
        if self.customers:
            lines.append(
                f"profile size: {self.profiles_bytes / self.customers:.0f} bytes per customer (JSON)"
            )
        for code, n in self.rejected_codes.most_common():
            lines.append(f"rejected {code}: {n}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Series:
    """One customer's readings as columns, in time order, already parsed (the CLI's feed makes them).

    ``kind`` is ``daily`` (``day``: days since 1970-01-01, ``coverage`` 0-1), ``interval``
    (``ts``: epoch seconds at the interval's end, ``interval_s``, ``estimated``) or
    ``register`` (``ts``, ``value`` = the register). A NaN or negative ``value`` (or a NaN
    ``ts``, or ``interval_s`` <= 0) marks a row that could not be used: it is counted as
    rejected (``backtest.invalid_row``). Columns left ``None`` take their defaults.

    >>> s = Series("daily", value=[5.0, -1.0], day=[19723, 19724])
    >>> [(r.day, r.value) for r in s.readings()]
    [(datetime.date(2024, 1, 1), 5.0), (None, -1.0)]
    """

    kind: Kind
    value: Sequence[float]
    day: Sequence[int] | None = None
    coverage: Sequence[float] | None = None
    ts: Sequence[float] | None = None
    interval_s: Sequence[int] | None = None
    estimated: Sequence[bool] | None = None

    def __len__(self) -> int:
        return len(self.value)

    def readings(self) -> Iterator[Reading]:
        """The rows as domain readings (an unusable row: a reading with value -1)."""
        n = len(self.value)
        if self.kind == "daily":
            days = self.day if self.day is not None else [0] * n
            cover = self.coverage if self.coverage is not None else [1.0] * n
            for dd, vv, cc in zip(days, self.value, cover, strict=True):
                if vv != vv or vv < 0:  # NaN or negative: reported as rejected by run_customers
                    yield Reading("daily", (dd + 1) * 86400.0, -1.0, day=None, coverage=0.0)
                    continue
                day = dt.date.fromordinal(dd + EPOCH_ORDINAL)
                yield Reading("daily", (dd + 1) * 86400.0, vv, interval_s=86400, day=day, coverage=cc)
            return
        stamps = self.ts if self.ts is not None else [float("nan")] * n
        steps = self.interval_s if self.interval_s is not None else [1800] * n
        est = self.estimated if self.estimated is not None else [False] * n
        for t, v, iv, e in zip(stamps, self.value, steps, est, strict=True):
            if t != t or v != v or v < 0 or iv <= 0:
                yield Reading("daily", 0.0, -1.0, day=None, coverage=0.0)
                continue
            yield Reading(self.kind, t, v, interval_s=int(iv), estimated=bool(e))


def run_customers(
    series: Iterable[tuple[str, Series]],
    *,
    customers: dict[str, CustomerRecord] | None = None,
    rules: RulesConfig | None = None,
    timezone: str = "Europe/London",
    read_day: int = 1,
    cycle_months: int = 1,
    progress: Callable[[int], None] | None = None,
    only: Iterable[str] | None = None,
    tariffs: Tariffs | None = None,
    region: str | None = None,
    weather: Temperatures | None = None,
) -> BacktestResult:
    """Run the engine over each customer's series; customers without a record get the defaults given
    (``region``: their public-holiday calendar, ``baselines.special_days``; None: none).
    ``weather``: daily temperatures per region (``baselines.weather``; a customer's region, else
    the ``*`` series); None: no weather, the rules judge as without a feed.

    ``series``: (id, its readings in time order), e.g. from ``meterwatch.cli.feed.iter_customers``.
    An id matches a record by ``customer_id`` or by one of the record's ``meter_ids``.
    ``tariffs``: the catalogue and default plans that price the alerts (``money``); customers
    name their plan in their record (``tariff_plan``), else their tariff's default applies.

    >>> r = run_customers([("c", Series("daily", value=[4.0] * 30, day=list(range(19723, 19753))))])
    >>> r.rows, r.customer_cycles, r.alerts
    (30, 1, [])
    """
    engine = Engine(rules, tariffs=tariffs, weather=weather)
    res = BacktestResult()
    by_meter = {m: rec for rec in (customers or {}).values() for m in rec.meter_ids}
    wanted = set(only) if only is not None else None
    for cid, one in series:
        if progress is not None:
            progress(len(one))
        res.rows += len(one)
        if wanted is not None and cid not in wanted:
            continue
        rec = (customers.get(cid) if customers else None) or by_meter.get(cid)
        if rec is not None:
            cust = CustomerConfig.from_record(rec)
        else:
            cust = CustomerConfig(
                cid, read_day=read_day, cycle_months=cycle_months, timezone=timezone, region=region
            )
        p = Profile.new(cust.customer_id)
        res.customers += 1
        seen_cycles: set[int] = set()
        for r in one.readings():
            if r.value < 0:
                res.rejected += 1
                res.rejected_codes["backtest.invalid_row"] += 1
                continue
            out = engine.process_inplace(p, r, cust)
            if out.duplicate:
                res.duplicates += 1
            elif out.rejected is not None:
                res.rejected += 1
                res.rejected_codes[out.rejected.code] += 1
            elif p.open_cycles:
                seen_cycles.add(p.open_cycles[-1].start)
            if out.alerts:
                res.alerts.extend(out.alerts)
        res.customer_cycles += len(seen_cycles)
        res.cycles_by_customer[cid] = len(seen_cycles)
        res.profiles_bytes += len(json.dumps(p.to_dict(), separators=(",", ":")))
    return res
