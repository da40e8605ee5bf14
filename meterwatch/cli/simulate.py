"""Synthetic households for demos, tests and benchmarks (pure functions; no Kafka here).

Every household has a level (log-normal, median about 8 kWh/day), a daily shape
(night base load, morning and evening peaks), a weekday/weekend difference, a seasonal
shape (summer cooling and winter heating bumps), holidays (Spring Festival week and
National Day week: some families travel, the rest use a little more), vacancies (a
few days to weeks at standby load) and, for a share of households, an injected surge
(a 3-6x jump from a known onset to the end of the window: a new appliance, a new
tenant, a flat turned into a small hotel).

Everything is deterministic given the seed: the same config gives the same bytes.

>>> cfg = SimConfig(customers=3, days=1, start=dt.date(2025, 3, 3), surge_share=0.0, seed=7)
>>> hh = make_households(cfg)
>>> [h.customer_id for h in hh], hh[0].meter_id
(['sim-00000', 'sim-00001', 'sim-00002'], 'simm-00000')
>>> rows = list(generate_readings(hh, cfg))
>>> len(rows), rows[0]["ts"], rows[0]["interval_s"]
(144, '2025-03-03T00:30:00+08:00', 1800)
>>> rows == list(generate_readings(make_households(cfg), cfg))
True
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

# Spring Festival (Chinese New Year's day) dates; the holiday week starts the day before.
SPRING_FESTIVAL = {
    2019: dt.date(2019, 2, 5),
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}


def holiday(day: dt.date) -> str | None:
    """The public-holiday week a day falls in (``spring_festival``, ``national_day``) or None.

    >>> holiday(dt.date(2026, 2, 18)), holiday(dt.date(2026, 10, 3)), holiday(dt.date(2026, 5, 20))
    ('spring_festival', 'national_day', None)
    """
    cand = SPRING_FESTIVAL.get(day.year)
    if cand is not None and cand - dt.timedelta(days=1) <= day <= cand + dt.timedelta(days=6):
        return "spring_festival"
    if day.month == 10 and day.day <= 7:
        return "national_day"
    return None


SURGE_TAIL_DAYS = 3
DROP_LEAD_DAYS = 11  # an injected drop starts this many days before the window (see SimConfig.drop_share)


@dataclass(frozen=True)
class SimConfig:
    customers: int = 200
    days: int = 7
    start: dt.date = dt.date(2026, 1, 5)
    interval_s: int = 1800
    surge_share: float = 0.05
    drop_share: float = 0.02  # households that leave (tenant gone) shortly before the window
    seed: int = 0
    history_days: int = 730
    timezone: str = "Asia/Shanghai"
    managers: int = 0  # 0 = one manager per 25 customers
    id_prefix: str = "sim"
    tariff_plan: str | None = None  # every household's CustomerRecord.tariff_plan (None: no money)


@dataclass(frozen=True)
class Surge:
    onset: dt.datetime  # aware; readings whose interval ends after this are multiplied
    factor: float


@dataclass
class Household:
    index: int
    customer_id: str
    meter_id: str
    manager_id: str
    phone: str
    level: float  # kWh/day on an ordinary spring weekday
    weekend: float  # weekend multiplier
    summer: float  # amplitude of the summer (cooling) bump
    winter: float  # amplitude of the winter (heating) bump
    night: float  # share of the base load at night
    travels: bool  # away during holiday weeks
    occupancy: str
    read_day: int
    cycle_months: int
    sms_opt_in: bool
    arrears_amount: float
    arrears_count: int
    complaints_count: int
    vacancies: list[tuple[dt.date, dt.date]] = field(default_factory=list)  # inclusive ranges
    surge: Surge | None = None
    drop_from: dt.date | None = None  # injected long drop: standby load from this day on
    shape: list[float] = field(default_factory=list)  # per slot of the day, sums to 1

    def customer_record(self, timezone: str, tariff_plan: str | None = None) -> dict[str, Any]:
        """A ``meterwatch.contracts.CustomerRecord`` as a JSON-ready dict (``tariff_plan`` when given)."""
        rec: dict[str, Any] = {
            "customer_id": self.customer_id,
            "meter_ids": [self.meter_id],
            "name": f"Household {self.index}",
            "phone": self.phone,
            "manager_id": self.manager_id,
            "tariff": "residential",
            "occupancy": self.occupancy,
            "read_day": self.read_day,
            "cycle_months": self.cycle_months,
            "timezone": timezone,
            "language": "zh-CN",
            "sms_opt_in": self.sms_opt_in,
            "arrears_amount": self.arrears_amount,
            "arrears_count": self.arrears_count,
            "complaints_count": self.complaints_count,
        }
        if tariff_plan is not None:
            rec["tariff_plan"] = tariff_plan
        return rec

    def vacant(self, day: dt.date) -> bool:
        return any(a <= day <= b for a, b in self.vacancies)


def _slot_shape(rng: np.random.Generator, slots: int, night: float) -> list[float]:
    """Daily shape: base load + morning and evening peaks (hour of the interval's middle)."""
    hours = (np.arange(slots) + 0.5) * 24.0 / slots
    morning = rng.uniform(6.5, 8.5)
    evening = rng.uniform(18.0, 21.0)
    base = night + 0.0 * hours
    peaks = 0.8 * np.exp(-0.5 * ((hours - morning) / 1.0) ** 2) + 1.6 * np.exp(
        -0.5 * ((hours - evening) / 1.6) ** 2
    )
    day_use = 0.35 * ((hours > 9) & (hours < 17))
    w = base + peaks + day_use
    w = w / w.sum()
    return [float(x) for x in w]


def make_households(cfg: SimConfig) -> list[Household]:
    """The simulated customers (registry data + behaviour parameters).

    (61 lines: one draw per household parameter, in a fixed order that keeps seeds stable.)
    """
    rng = np.random.default_rng([cfg.seed, 1])
    tz = ZoneInfo(cfg.timezone)
    slots = max(1, 86400 // cfg.interval_s)
    managers = cfg.managers or max(1, math.ceil(cfg.customers / 25))
    n_surge = round(cfg.surge_share * cfg.customers)
    surge_idx = set(rng.choice(cfg.customers, size=min(n_surge, cfg.customers), replace=False).tolist())
    n_drop = round(cfg.drop_share * cfg.customers)
    drng = np.random.default_rng([cfg.seed, 5])
    drop_idx = set(drng.choice(cfg.customers, size=min(n_drop, cfg.customers), replace=False).tolist())
    out = []
    for i in range(cfg.customers):
        hrng = np.random.default_rng([cfg.seed, 2, i])
        rented = bool(hrng.random() < 0.3)
        arrears_count = int(hrng.poisson(0.8 if rented else 0.15))
        h = Household(
            index=i,
            customer_id=f"{cfg.id_prefix}-{i:05d}",
            meter_id=f"{cfg.id_prefix}m-{i:05d}",
            manager_id=f"{cfg.id_prefix}-mgr-{i % managers:02d}",
            phone=f"+86{13800000000 + i}",
            level=float(np.exp(hrng.normal(math.log(8.0), 0.55))),
            weekend=float(hrng.uniform(0.95, 1.3)),
            summer=float(hrng.uniform(0.1, 1.0)),
            winter=float(hrng.uniform(0.0, 0.6)),
            night=float(hrng.uniform(0.3, 1.0)),
            travels=bool(hrng.random() < 0.35),
            occupancy="rented" if rented else ("owner" if hrng.random() < 0.9 else "unknown"),
            read_day=int(hrng.integers(1, 29)),
            cycle_months=2 if hrng.random() < 0.1 else 1,
            sms_opt_in=bool(hrng.random() < 0.7),
            arrears_amount=round(float(arrears_count * hrng.uniform(30, 300)), 2),
            arrears_count=arrears_count,
            complaints_count=int(hrng.poisson(0.2)),
        )
        h.shape = _slot_shape(hrng, slots, h.night)
        # vacancies: about one short absence a year, anywhere in history + window
        first = cfg.start - dt.timedelta(days=cfg.history_days)
        span = cfg.history_days + cfg.days
        for _ in range(int(hrng.poisson(max(span, 1) / 365.0))):
            a = first + dt.timedelta(days=int(hrng.integers(0, max(span, 1))))
            h.vacancies.append((a, a + dt.timedelta(days=int(hrng.integers(3, 21)))))
        if i in surge_idx:
            # onset early enough that at least 3 whole days of the window follow it (when the
            # window allows), so that a detector that needs a few days of evidence can see it
            room = max(1, cfg.days - SURGE_TAIL_DAYS) * 86400
            off = int(hrng.integers(0, max(1, room // cfg.interval_s))) * cfg.interval_s
            start = dt.datetime.combine(cfg.start, dt.time(0), tzinfo=tz)
            h.surge = Surge(onset=start + dt.timedelta(seconds=off), factor=float(hrng.uniform(3.0, 6.0)))
            # a surge household is at home during the window
            h.vacancies = [
                (a, b) for a, b in h.vacancies if b < cfg.start or a > cfg.start + dt.timedelta(days=cfg.days)
            ]
        elif i in drop_idx:
            # the household leaves shortly before the window and stays away: a long drop whose
            # 14th low day falls early in the window
            h.drop_from = cfg.start - dt.timedelta(days=DROP_LEAD_DAYS)
            h.vacancies.append((h.drop_from, cfg.start + dt.timedelta(days=cfg.days + 60)))
        out.append(h)
    return out


def _season(day: dt.date) -> tuple[float, float]:
    """(summer bump, winter bump) in 0..1 for a day of the year (northern hemisphere)."""
    doy = day.timetuple().tm_yday
    summer = math.exp(-0.5 * ((doy - 210) / 25.0) ** 2)
    d_w = min(abs(doy - 15), 365 - abs(doy - 15))
    winter = math.exp(-0.5 * (d_w / 30.0) ** 2)
    return summer, winter


def expected_daily_kwh(h: Household, day: dt.date) -> float:
    """The household's expected consumption on a day, before noise and surge.

    >>> cfg = SimConfig(customers=1, surge_share=0.0, seed=3)
    >>> h = make_households(cfg)[0]
    >>> expected_daily_kwh(h, dt.date(2025, 7, 29)) > expected_daily_kwh(h, dt.date(2025, 4, 29))
    True
    """
    if h.vacant(day):
        return 0.04 * h.level
    summer, winter = _season(day)
    f = 1.0 + h.summer * summer + h.winter * winter
    if day.weekday() >= 5:
        f *= h.weekend
    hol = holiday(day)
    if hol is not None:
        f *= 0.08 if h.travels else 1.15
    return h.level * f


def daily_matrix(households: list[Household], days: list[dt.date], seed: int) -> np.ndarray:
    """Daily kWh, shape (len(days), len(households)), with day-to-day noise (no surge)."""
    out = np.empty((len(days), len(households)))
    for d, day in enumerate(days):
        rng = np.random.default_rng([seed, 3, day.toordinal()])
        noise = rng.lognormal(0.0, 0.18, size=len(households))
        out[d] = [expected_daily_kwh(h, day) for h in households]
        out[d] *= noise
    return out


def generate_history(households: list[Household], cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """Daily ``HistoryRow`` dicts for the ``history_days`` before ``start`` (customer-major order)."""
    if cfg.history_days <= 0:
        return
    days = [cfg.start - dt.timedelta(days=cfg.history_days - i) for i in range(cfg.history_days)]
    mat = daily_matrix(households, days, cfg.seed)
    for j, h in enumerate(households):
        for d, day in enumerate(days):
            yield {"customer_id": h.customer_id, "day": day.isoformat(), "kwh": round(float(mat[d, j]), 3)}


def generate_readings(
    households: list[Household], cfg: SimConfig, with_customer_id: bool = False
) -> Iterator[dict[str, Any]]:
    """``MeterReading`` dicts, interval by interval (all meters per interval), for ``days`` days.

    The interval ends at ``ts`` (local time with offset); a surge multiplies every
    interval that ends after its onset.
    """
    tz = ZoneInfo(cfg.timezone)
    slots = max(1, 86400 // cfg.interval_s)
    days = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
    mat = daily_matrix(households, days, cfg.seed)
    shapes = np.array([h.shape for h in households]).T  # (slots, H)
    surge_factor = np.array([h.surge.factor if h.surge else 1.0 for h in households])
    surge_onset = np.array([h.surge.onset.timestamp() if h.surge else math.inf for h in households])
    for d, day in enumerate(days):
        rng = np.random.default_rng([cfg.seed, 4, day.toordinal()])
        noise = rng.gamma(8.0, 1.0 / 8.0, size=(slots, len(households)))
        kwh = mat[d][None, :] * shapes * noise
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
        for s in range(slots):
            end = midnight + dt.timedelta(seconds=(s + 1) * cfg.interval_s)
            epoch = end.timestamp()
            row = np.where(surge_onset < epoch, kwh[s] * surge_factor, kwh[s])
            ts = end.isoformat()
            for j, h in enumerate(households):
                r: dict[str, Any] = {
                    "meter_id": h.meter_id,
                    "ts": ts,
                    "kwh": round(float(row[j]), 4),
                    "interval_s": cfg.interval_s,
                }
                if with_customer_id:
                    r["customer_id"] = h.customer_id
                yield r


def encoded_readings(
    households: list[Household], cfg: SimConfig, with_customer_id: bool = False
) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` byte pairs for the readings topic (key: meter_id), for benchmarks."""
    for r in generate_readings(households, cfg, with_customer_id):
        yield r["meter_id"].encode(), json.dumps(r, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SimSummary:
    customers: int
    readings: int
    history_rows: int
    surges: list[dict[str, Any]]
    vacancies_in_window: list[str]
    drops: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"customers: {self.customers}",
            f"readings: {self.readings}",
            f"history rows: {self.history_rows}",
            f"surges injected: {len(self.surges)}",
        ]
        out += [f"  {s['customer_id']} x{s['factor']:.1f} from {s['onset']}" for s in self.surges]
        out.append(f"long drops injected: {len(self.drops)}")
        out += [f"  {d['customer_id']} away from {d['from']}" for d in self.drops]
        out.append(f"vacant during the window: {len(self.vacancies_in_window)}")
        return out


def summarise(households: list[Household], cfg: SimConfig) -> SimSummary:
    slots = max(1, 86400 // cfg.interval_s)
    end = cfg.start + dt.timedelta(days=cfg.days - 1)
    return SimSummary(
        customers=len(households),
        readings=len(households) * slots * cfg.days,
        history_rows=len(households) * max(cfg.history_days, 0),
        surges=[
            {
                "customer_id": h.customer_id,
                "meter_id": h.meter_id,
                "onset": h.surge.onset.isoformat(),
                "factor": round(h.surge.factor, 3),
            }
            for h in households
            if h.surge is not None
        ],
        drops=[
            {"customer_id": h.customer_id, "meter_id": h.meter_id, "from": h.drop_from.isoformat()}
            for h in households
            if h.drop_from is not None
        ],
        vacancies_in_window=[
            h.customer_id for h in households if any(a <= end and b >= cfg.start for a, b in h.vacancies)
        ],
    )
