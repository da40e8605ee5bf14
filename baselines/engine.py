"""The domain entry point: readings in, profile and alerts out.

The same ``Engine`` serves the stream worker, the API (``snapshot``) and the
backtest. It is pure: no I/O, no clock unless given one.

Per reading the work is O(1): the value is added to its day's accumulator in the
late window. Heavier work happens when a day becomes final (it leaves the late
window: the baseline statistics are refreshed) and when a day is complete (the
rules are evaluated once per customer and day). ``same_period_reached`` is also
checked on every reading, with a cached threshold, so it fires on the reading
that crosses it.

Alert ids are deterministic: the first 32 hex digits of
``sha256(f"{customer_id}|{rule}|{cycle_start:%Y-%m-%d}")``; a replay produces
the same ids, and a rule fires at most once per customer and cycle.

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
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from baselines.customer import CustomerConfig
from baselines.cycles import cycle_containing, cycle_end_for, day_bounds_epoch, local_date, same_period
from baselines.profile import MAX_CYCLES, ClosedCycleT, OpenCycle, OpenDay, Profile
from baselines.readings import Reading
from baselines.rules import RULES, RulesConfig, RuleSet, explain
from baselines.stats import median, quantile_high, robust_sigma
from meterwatch.contracts import (
    Alert,
    BaselineBlock,
    BaselineSnapshot,
    ClosedCycle,
    CycleNow,
    CycleRef,
    Explanation,
    HistoryRow,
    Observed,
    Reason,
    SamePeriod,
    SegmentRef,
)

DAILY_GRAN = 86400
REGISTER_GRAN = 0
NIGHT_END_S = 7 * 3600
CUSTOMER_FACING_KEY = "_customer"
# the recent daily level (Wh) behind the first customer-facing alert of the cycle (CUSTOMER_FACING_KEY)
CUSTOMER_LEVEL_KEY = "_customer_wh"
ESCALATION = "sudden_increase_escalation"
_EMPTY_SEG = SegmentRef()


class StepResult(NamedTuple):
    """What one reading did."""

    profile: Profile
    alerts: list[Alert]
    rejected: Reason | None
    duplicate: bool


def alert_id(customer_id: str, rule: str, cycle_start: dt.date) -> str:
    """Deterministic alert id (customer, rule, cycle start).

    >>> import datetime as dt
    >>> alert_id("c1", "sudden_increase", dt.date(2024, 1, 1))
    '24b79d4551131564e6f64eaa8840b3e2'
    """
    raw = f"{customer_id}|{rule}|{cycle_start.isoformat()}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _dow(ordinal: int) -> int:
    return (ordinal + 6) % 7


def _d(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def _reject(code: str, message: str, **numbers: float | int | str | None) -> Reason:
    return Reason(code=code, message=message, numbers=numbers)


class Engine:
    """Stateless rule engine; all state lives in the ``Profile`` values it returns."""

    def __init__(
        self,
        rules: RulesConfig | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``clock`` gives ``created_at`` of alerts; without one, ``created_at``
        equals ``triggered_by`` (deterministic, as the backtest wants)."""
        self.rules = rules if rules is not None else RulesConfig()
        self._clock = clock
        self._daycache: dict[str, tuple[float, float, int]] = {}
        self._rulesets: dict[tuple[str, int | None], RuleSet] = {}

    # ------------------------------------------------------------------ helpers
    def _locate(self, epoch: float, tz: ZoneInfo) -> tuple[int, float, float]:
        c = self._daycache.get(tz.key)
        if c is not None and c[0] <= epoch < c[1]:
            return c[2], c[0], c[1]
        day = local_date(epoch, tz)
        s, e = day_bounds_epoch(day, tz)
        self._daycache[tz.key] = (s, e, day.toordinal())
        return day.toordinal(), s, e

    def _cycle_len(self, start: int, cust: CustomerConfig) -> int:
        return cycle_end_for(_d(start), cust.read_day, cust.cycle_months).toordinal()

    def _ensure_cycles(self, p: Profile, day: int, cust: CustomerConfig) -> None:
        """Make sure an open cycle contains ``day`` (creating empty ones across gaps)."""
        if not p.open_cycles:
            start: int | None = None
            if p.closed_cycles and p.closed_cycles[-1].end <= day and day - p.closed_cycles[-1].end < 400:
                start = p.closed_cycles[-1].end
            if start is None:
                start = cycle_containing(_d(day), cust.read_day, cust.cycle_months)[0].toordinal()
                if p.closed_cycles and start < p.closed_cycles[-1].end:
                    start = p.closed_cycles[-1].end
            p.open_cycles.append(OpenCycle(start, self._cycle_len(start, cust), 0.0, 0.0))
        while p.open_cycles[-1].end <= day:
            s = p.open_cycles[-1].end
            p.open_cycles.append(OpenCycle(s, self._cycle_len(s, cust), 0.0, 0.0))
        if day < p.open_cycles[0].start:
            lo = cycle_containing(_d(day), cust.read_day, cust.cycle_months)[0].toordinal()
            if p.closed_cycles:
                lo = max(lo, p.closed_cycles[-1].end)
            if lo <= day:
                p.open_cycles.insert(0, OpenCycle(lo, p.open_cycles[0].start, 0.0, 0.0))

    def _cycle_of(self, p: Profile, day: int) -> int:
        for i, c in enumerate(p.open_cycles):
            if c.start <= day < c.end:
                return i
        return -1

    def _advance(self, p: Profile, new_newest: int, cust: CustomerConfig) -> None:
        p.newest_day = new_newest
        self._ensure_cycles(p, new_newest, cust)
        horizon = new_newest - self.rules.late_window_days
        if p.open_days:
            old = [d for d in p.open_days if d < horizon]
            if old:
                old.sort()
                for d in old:
                    self._finalize(p, d, p.open_days.pop(d), cust)
        while p.open_cycles and p.open_cycles[0].end <= horizon and len(p.open_cycles) > 1:
            self._close_cycle(p, p.open_cycles.pop(0))

    def _close_cycle(self, p: Profile, c: OpenCycle) -> None:
        n = c.end - c.start
        p.closed_cycles.append(
            ClosedCycleT(c.start, c.end, round(c.kwh, 3), round(min(1.0, c.covered_days / n), 4))
        )
        if len(p.closed_cycles) > MAX_CYCLES:
            del p.closed_cycles[: len(p.closed_cycles) - MAX_CYCLES]

    def _finalize(self, p: Profile, d: int, acc: OpenDay, cust: CustomerConfig) -> None:
        if acc.granularity_s == DAILY_GRAN:
            cov = acc.covered_s / DAILY_GRAN
        else:
            s, e = day_bounds_epoch(_d(d), cust.tz)
            cov = min(1.0, acc.covered_s / (e - s))
        i = self._cycle_of(p, d)
        if i >= 0:
            c = p.open_cycles[i]
            p.open_cycles[i] = OpenCycle(c.start, c.end, c.kwh + acc.kwh, c.covered_days + cov)
        value = round(acc.kwh, 3) if cov >= self.rules.min_day_coverage else None
        if value is not None and acc.granularity_s not in (DAILY_GRAN, REGISTER_GRAN) and value > 0:
            ns = acc.night_kwh / value
            p.night_share = round(ns if p.night_share is None else 0.9 * p.night_share + 0.1 * ns, 4)
        self._push_day(p, d, value)

    def _push_day(self, p: Profile, d: int, value: float | None) -> None:
        rc = self.rules
        if p.final_start is None or d - p.final_start - len(p.final_days) > rc.ring_days:
            p.final_start, p.final_days, p.high_flags, p.low_flags = d, [], 0, 0
        idx = d - p.final_start
        if idx < len(p.final_days):  # a final day corrected (register spread over final days)
            if idx >= 0:
                old = p.final_days[idx]
                p.final_days[idx] = value if old is None else round(old + (value or 0.0), 3)
            return
        while len(p.final_days) < idx:
            p.final_days.append(None)
        med = p.baseline_median
        if value is not None and med is not None and med > 0 and p.baseline_days >= 14:
            med = med * p.weekday_factors[_dow(d)]
            sig = robust_sigma(p.baseline_mad, med)
            if value > med + rc.flag_z * sig and value > rc.flag_hi_ratio * med:
                p.high_flags |= 1 << idx
            elif value < rc.flag_lo_ratio * med:
                p.low_flags |= 1 << idx
        p.final_days.append(value)
        excess = len(p.final_days) - rc.ring_days
        if excess > 0:
            del p.final_days[:excess]
            p.final_start += excess
            p.high_flags >>= excess
            p.low_flags >>= excess
        # a level that persists is a new habit: stop excluding it
        n = len(p.final_days)
        span = rc.level_shift_days
        if n >= span:
            window = ((1 << span) - 1) << (n - span)
            need = rc.level_shift_share * span
            shifted = False
            if (p.high_flags & window).bit_count() >= need:
                p.high_flags &= ~window
                shifted = True
            if (p.low_flags & window).bit_count() >= need:
                p.low_flags &= ~window
                shifted = True
            if shifted:
                self._recompute_stats(p)
                return
        # the statistics are refreshed weekly (daily while the baseline is young, and when a
        # day was flagged or a level shift cleared flags): they describe weeks, not days
        if d % 7 == 0 or p.baseline_days < 28:
            self._recompute_stats(p)

    def _recompute_stats(self, p: Profile, with_shape: bool = True) -> None:
        """Baseline median/MAD over the unflagged ring days; weekday factors if ``with_shape``."""
        flagged = p.high_flags | p.low_flags
        assert p.final_start is not None
        days = p.final_days
        if flagged:
            vals = [v for i, v in enumerate(days) if v is not None and not (flagged >> i) & 1]
        else:
            vals = [v for v in days if v is not None]
        p.baseline_days = len(vals)
        p.p95_day = self._episode_high(days)
        if not vals:
            p.baseline_median = p.baseline_mad = None
            p.weekday_factors = (1.0,) * 7
            return
        vals.sort()
        n = len(vals)
        h = n // 2
        med = vals[h] if n % 2 else (vals[h - 1] + vals[h]) / 2.0
        p.baseline_median = med
        p.baseline_mad = median([abs(x - med) for x in vals])
        if with_shape and med > 0 and n >= 14:
            first = (p.final_start + 6) % 7  # weekday of days[0]
            wf = [1.0] * 7
            for k in range(7):
                i0 = (k - first) % 7
                # the weekly shape uses every known day (a weekday median is robust on its own)
                xs = [v for v in days[i0::7] if v is not None]
                m = len(xs)
                f = median(xs) / med if m else 1.0
                f = (m * f + 3.0) / (m + 3.0)
                wf[k] = round(min(2.0, max(0.5, f)), 3)
            p.weekday_factors = tuple(wf)

    def _episode_high(self, days: list[float | None]) -> float | None:
        """The customer's own 95th-percentile day of the ring, spikes included (None if < 14 days)."""
        known = sorted(v for v in days if v is not None)
        if len(known) < 14:
            return None
        return known[min(len(known) - 1, int(0.95 * len(known)))]

    def _book_final(self, p: Profile, d: int, kwh: float) -> None:
        """Add kWh to a day that already left the late window (register spreads only)."""
        i = self._cycle_of(p, d)
        if i >= 0:
            c = p.open_cycles[i]
            p.open_cycles[i] = OpenCycle(c.start, c.end, c.kwh + kwh, c.covered_days)
        else:
            for j in range(len(p.closed_cycles) - 1, -1, -1):
                cc = p.closed_cycles[j]
                if cc.start <= d < cc.end:
                    p.closed_cycles[j] = ClosedCycleT(cc.start, cc.end, round(cc.kwh + kwh, 3), cc.coverage)
                    p.same_period_cache = None
                    break
        if p.final_start is not None and 0 <= d - p.final_start < len(p.final_days):
            v = p.final_days[d - p.final_start]
            p.final_days[d - p.final_start] = round((v or 0.0) + kwh, 3)

    # ------------------------------------------------------------------ process
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
        res = self._apply(p, reading, customer, segment, emit)
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
        return self._apply(p, reading, customer, segment, emit)

    def _apply(
        self,
        p: Profile,
        r: Reading,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        emit: bool,
    ) -> StepResult:
        W = self.rules.late_window_days
        kind = r.kind
        complete = False
        if kind == "register":
            out = self._register(p, r, cust)
            if out is not None:
                return out
            day = p.newest_day
            assert day is not None
        else:
            v = r.value
            if kind == "daily":
                assert r.day is not None
                day = r.day.toordinal()
                gran = DAILY_GRAN
                slot = 0
                covered = min(1.0, max(0.0, r.coverage)) * DAILY_GRAN
                night = 0.0
                complete = True
            else:
                day, ds, de = self._locate(r.ts - r.interval_s, cust.tz)
                covered = float(r.interval_s)
                night = v if (r.ts - r.interval_s - ds) < NIGHT_END_S else 0.0
                complete = r.ts >= de - 1.0
            if p.newest_day is not None and day < p.newest_day - W:
                return StepResult(
                    p,
                    [],
                    _reject(
                        "baselines.readings.too_late",
                        f"reading for {_d(day)} is older than the late window of {W} days",
                        day=_d(day).isoformat(),
                        newest=_d(p.newest_day).isoformat(),
                        window_days=W,
                    ),
                    False,
                )
            acc = p.open_days.get(day)
            if kind != "daily":
                gran = acc.granularity_s if acc is not None and acc.granularity_s > 0 else r.interval_s
                slot = int((r.ts - ds) / gran + 0.5)
            if acc is None:
                p.open_days[day] = OpenDay(
                    v, covered, 1 << slot, gran, {slot: v} if r.estimated else None, night
                )
            else:
                if acc.granularity_s != gran and acc.slots_seen:
                    if (
                        acc.granularity_s == REGISTER_GRAN
                        or gran == DAILY_GRAN
                        or acc.granularity_s == DAILY_GRAN
                    ):
                        return StepResult(
                            p,
                            [],
                            _reject(
                                "baselines.readings.mixed_resolution",
                                "this day already has readings of another kind",
                                day=_d(day).isoformat(),
                            ),
                            False,
                        )
                bit = 1 << slot
                if acc.slots_seen & bit:
                    est = acc.estimated
                    if est is not None and slot in est:
                        old = est[slot]
                        if r.estimated and old == v:
                            return StepResult(p, [], None, True)
                        new_est = dict(est)
                        if r.estimated:
                            new_est[slot] = v
                        else:
                            del new_est[slot]
                        p.open_days[day] = OpenDay(
                            acc.kwh + v - old,
                            acc.covered_s,
                            acc.slots_seen,
                            acc.granularity_s,
                            new_est or None,
                            acc.night_kwh + (night - old if night else 0.0),
                        )
                    else:
                        return StepResult(p, [], None, True)
                else:
                    est2 = acc.estimated
                    if r.estimated:
                        est2 = dict(est2) if est2 else {}
                        est2[slot] = v
                    p.open_days[day] = OpenDay(
                        acc.kwh + v,
                        acc.covered_s + covered,
                        acc.slots_seen | bit,
                        acc.granularity_s,
                        est2,
                        acc.night_kwh + night,
                    )
            if p.newest_day is None or day > p.newest_day:
                self._advance(p, day, cust)
            elif day < p.open_cycles[0].start:
                self._ensure_cycles(p, day, cust)
        if p.latest_ts is None or r.ts > p.latest_ts:
            p.latest_ts = r.ts
        if not emit:
            return StepResult(p, [], None, False)
        newest = p.newest_day
        assert newest is not None
        as_of = newest if (complete and day == newest) else newest - 1
        alerts: list[Alert] = []
        rkey = (cust.tariff, seg.id if seg is not None else None)
        rs = self._rulesets.get(rkey)
        if rs is None:
            rs = self._rulesets[rkey] = self.rules.resolve(*rkey)
        if p.evaluated_day is None or as_of > p.evaluated_day:
            p.evaluated_day = as_of
            self._evaluate(p, as_of, rs, cust, seg, r.ts, alerts)
        elif rs.same_period_reached.enabled:
            self._check_same_period_live(p, rs, cust, seg, r.ts, alerts)
        return StepResult(p, alerts, None, False)

    def _register(self, p: Profile, r: Reading, cust: CustomerConfig) -> StepResult | None:
        """Book a cumulative register read; return a result if it ends processing here."""
        t, v = r.ts, r.value
        rc = self.rules
        if p.register_read is None:
            if r.estimated:
                if p.register_estimate == (t, v):
                    return StepResult(p, [], None, True)
                p.register_estimate = (t, v)
                return StepResult(p, [], None, False)
            p.register_read = (t, v)
            day = self._locate(t - 1.0, cust.tz)[0]
            if p.newest_day is None or day > p.newest_day:
                self._advance(p, day, cust)
            return None
        pt, pv = p.register_read
        if t <= pt:
            if v <= pv:
                return StepResult(p, [], None, True)  # an older read consistent with what we have
            return StepResult(
                p,
                [],
                _reject(
                    "baselines.readings.register_backwards",
                    "an older register read is higher than a newer one",
                    previous_kwh=pv,
                    register_kwh=v,
                ),
                False,
            )
        if v < pv:
            if v <= pv * rc.register_reset_fraction:
                p.register_read = (t, v)
                p.register_estimate = None
                p.reasons["_register"] = [
                    "baselines.readings.meter_reset",
                    {"previous_kwh": pv, "register_kwh": v, "at": t},
                ]
                day = self._locate(t - 1.0, cust.tz)[0]
                if p.newest_day is None or day > p.newest_day:
                    self._advance(p, day, cust)
                return None
            return StepResult(
                p,
                [],
                _reject(
                    "baselines.readings.register_backwards",
                    f"register went backwards from {pv} to {v} kWh",
                    previous_kwh=pv,
                    register_kwh=v,
                ),
                False,
            )
        diff = v - pv
        hours = (t - pt) / 3600.0
        if diff > rc.register_max_kw * max(hours, 0.5):
            return StepResult(
                p,
                [],
                _reject(
                    "baselines.readings.register_implausible",
                    f"{diff:.1f} kWh in {hours:.1f} h exceeds {rc.register_max_kw} kW",
                    previous_kwh=pv,
                    register_kwh=v,
                    hours=round(hours, 3),
                ),
                False,
            )
        if r.estimated:
            if p.register_estimate == (t, v):
                return StepResult(p, [], None, True)
            p.register_estimate = (t, v)
            return StepResult(p, [], None, False)
        # spread the consumption over the local days the gap covers, by time
        W = rc.late_window_days
        total = t - pt
        cur = pt
        last_day = self._locate(t - 1.0, cust.tz)[0]
        if p.newest_day is None or last_day > p.newest_day:
            self._ensure_cycles(p, last_day, cust)
        horizon = (p.newest_day if p.newest_day is not None else last_day) - W
        while cur < t:
            d, _, de = self._locate(cur, cust.tz)
            seg_end = min(de, t)
            share = diff * (seg_end - cur) / total
            if d < horizon:
                self._book_final(p, d, share)
            else:
                self._ensure_cycles(p, d, cust)
                acc = p.open_days.get(d)
                if acc is None:
                    p.open_days[d] = OpenDay(share, seg_end - cur, 0, REGISTER_GRAN, None, 0.0)
                else:
                    p.open_days[d] = OpenDay(
                        acc.kwh + share,
                        acc.covered_s + (seg_end - cur),
                        acc.slots_seen,
                        acc.granularity_s,
                        acc.estimated,
                        acc.night_kwh,
                    )
            cur = seg_end
        p.register_read = (t, v)
        p.register_estimate = None
        if p.newest_day is None or last_day > p.newest_day:
            self._advance(p, last_day, cust)
        return None

    # ------------------------------------------------------------------ figures
    def _same_period(self, p: Profile, start: int, end: int) -> tuple[float, float] | None:
        """Pro-rata same-period kWh and coverage from the closed cycles, or None.

        Cached on the profile (``spc``) while the cycle and the closed cycles are unchanged.
        """
        last = p.closed_cycles[-1] if p.closed_cycles else None
        key = (start, end, len(p.closed_cycles), last)
        spc = p.same_period_cache
        if spc is not None and spc[0] == key:
            return spc[1]
        s1d, e1d = same_period(_d(start), _d(end))
        s1, e1 = s1d.toordinal(), e1d.toordinal()
        kwh = 0.0
        covd = 0.0
        for c in p.closed_cycles:
            if c.end <= s1 or c.start >= e1:
                continue
            o = min(c.end, e1) - max(c.start, s1)
            n = c.end - c.start
            kwh += c.kwh * o / n
            covd += c.coverage * o
        out = (kwh, covd / (e1 - s1)) if covd > 0 else None
        p.same_period_cache = (key, out)
        return out

    def _ctd(self, p: Profile, ci: int, upto: int | None = None) -> float:
        c = p.open_cycles[ci]
        total = c.kwh
        for d, acc in p.open_days.items():
            if c.start <= d < c.end and (upto is None or d <= upto):
                total += acc.kwh
        return total

    def _days(self, p: Profile, lo: int, hi: int) -> list[float | None]:
        """``_day`` for every day in ``[lo, hi)``: ring days by slice, open days by lookup."""
        out: list[float | None] = []
        ds = p.final_start
        opened = p.open_days
        d = lo
        if ds is not None and not opened:
            i0, i1 = lo - ds, hi - ds
            if i0 >= 0 and i1 <= len(p.final_days):
                return p.final_days[i0:i1]
        days = p.final_days
        nd = len(days)
        mincov = self.rules.min_day_coverage
        while d < hi:
            acc = opened.get(d)
            if acc is not None:
                out.append(acc.kwh if acc.covered_s / DAILY_GRAN >= mincov else None)
            elif ds is not None and 0 <= d - ds < nd:
                out.append(days[d - ds])
            else:
                out.append(None)
            d += 1
        return out

    def _level(self, p: Profile, as_of: int, n: int = 7) -> tuple[float, int] | None:
        """Median of the last n complete days, divided by the weekday factor."""
        lo = as_of - n + 1
        wf = p.weekday_factors
        w0 = _dow(lo)
        xs = [v / wf[(w0 + i) % 7] for i, v in enumerate(self._days(p, lo, as_of + 1)) if v is not None]
        if len(xs) < max(1, n - 2):
            return None
        return median(xs), len(xs)

    # ------------------------------------------------------------------ rules
    def _skip(self, p: Profile, rule: str, code: str, **numbers: float | int | str | None) -> None:
        p.reasons[rule] = [code, numbers]

    def _check_same_period_live(
        self,
        p: Profile,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        if not p.open_cycles:
            return
        c = p.open_cycles[-1]
        if p.fired.get("same_period_reached") == c.start:
            return
        sp = self._same_period(p, c.start, c.end)
        if sp is None:
            return
        if self._ctd(p, len(p.open_cycles) - 1) >= rs.same_period_reached.factor * sp[0]:
            assert p.newest_day is not None
            self._rule_same_period(p, len(p.open_cycles) - 1, p.newest_day, rs, cust, seg, ts, alerts)

    def _evaluate(
        self,
        p: Profile,
        as_of: int,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        ci = self._cycle_of(p, as_of)
        if ci < 0:
            return
        if rs.same_period_reached.enabled:
            self._rule_same_period(
                p, len(p.open_cycles) - 1, p.newest_day or as_of, rs, cust, seg, ts, alerts
            )
        if rs.projected_over_same_period.enabled:
            self._rule_projected(p, ci, as_of, rs, cust, seg, ts, alerts)
        if rs.sudden_increase.enabled:
            self._rule_sudden(p, ci, as_of, rs, cust, seg, ts, alerts)
        if rs.sustained_drop.enabled:
            self._rule_drop(p, ci, as_of, rs, cust, seg, ts, alerts)

    def _rule_same_period(
        self,
        p: Profile,
        ci: int,
        as_of: int,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        rule = "same_period_reached"
        cfg = rs.same_period_reached
        c = p.open_cycles[ci]
        if p.fired.get(rule) == c.start:
            return
        sp = self._same_period(p, c.start, c.end)
        if sp is None:
            self._skip(p, rule, "baselines.sufficiency.no_same_period")
            return
        sp_kwh, sp_cov = sp
        # judge against the whole same-period cycle: scale a partly covered one (>= the minimum
        # coverage) up to its full length, so a constant level cannot "reach" it early
        sp_kwh = sp_kwh / sp_cov if 0 < sp_cov < 1 else sp_kwh
        if sp_cov < cfg.min_same_period_coverage:
            self._skip(
                p,
                rule,
                "baselines.sufficiency.same_period_coverage",
                coverage=round(sp_cov, 3),
                needed=cfg.min_same_period_coverage,
            )
            return
        if sp_kwh < cfg.min_same_period_kwh:
            self._skip(
                p, rule, "baselines.sufficiency.same_period_too_small", same_period_kwh=round(sp_kwh, 2)
            )
            return
        p.reasons.pop(rule, None)
        ctd = self._ctd(p, ci)
        if ctd < cfg.factor * sp_kwh:
            return
        total = c.end - c.start
        elapsed = min(total, as_of - c.start + 1)
        if elapsed / total > cfg.max_elapsed_fraction:
            return
        days_left = float(c.end - 1 - as_of)
        nums = {"ctd": ctd, "sp": sp_kwh, "days_left": days_left}
        self._fire(
            p,
            rule,
            cfg.severity,
            cfg.customer_facing,
            c,
            cust,
            seg,
            ts,
            alerts,
            Observed(
                cycle_to_date_kwh=round(ctd, 3),
                same_period_kwh=round(sp_kwh, 3),
                baseline_daily_kwh=_r(p.baseline_median),
                ratio=round(ctd / sp_kwh, 3),
            ),
            nums,
            {"same_period_coverage": round(sp_cov, 3), "days_elapsed": elapsed, "cycle_days": total},
        )

    def _projection(self, p: Profile, ci: int, as_of: int) -> tuple[float, float, float] | None:
        """(projected kWh, cycle-to-date through as_of, level) or None without a level."""
        c = p.open_cycles[ci]
        lv = self._level(p, as_of)
        if lv is None:
            return None
        level = lv[0]
        ctd = self._ctd(p, ci, as_of)
        wf = p.weekday_factors
        n_rest = c.end - as_of - 1
        weeks, extra = divmod(max(0, n_rest), 7)
        rest = weeks * sum(wf)
        d0 = as_of + 1 + weeks * 7
        for d in range(d0, d0 + extra):
            rest += wf[(d + 6) % 7]
        return ctd + level * rest, ctd, level

    def _rule_projected(
        self,
        p: Profile,
        ci: int,
        as_of: int,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        rule = "projected_over_same_period"
        cfg = rs.projected_over_same_period
        c = p.open_cycles[ci]
        if p.fired.get(rule) == c.start:
            return
        sp = self._same_period(p, c.start, c.end)
        if sp is None:
            self._skip(p, rule, "baselines.sufficiency.no_same_period")
            p.streaks.pop(rule, None)
            return
        sp_kwh, sp_cov = sp
        # judge against the whole same-period cycle: scale a partly covered one (>= the minimum
        # coverage) up to its full length, so a constant level cannot "reach" it early
        sp_kwh = sp_kwh / sp_cov if 0 < sp_cov < 1 else sp_kwh
        if sp_cov < cfg.min_same_period_coverage:
            self._skip(
                p,
                rule,
                "baselines.sufficiency.same_period_coverage",
                coverage=round(sp_cov, 3),
                needed=cfg.min_same_period_coverage,
            )
            p.streaks.pop(rule, None)
            return
        if sp_kwh < cfg.min_same_period_kwh:
            self._skip(
                p, rule, "baselines.sufficiency.same_period_too_small", same_period_kwh=round(sp_kwh, 2)
            )
            return
        elapsed = as_of - c.start + 1
        if elapsed < cfg.min_days_elapsed:
            self._skip(
                p,
                rule,
                "baselines.sufficiency.too_few_days_in_cycle",
                days=elapsed,
                needed=cfg.min_days_elapsed,
            )
            p.streaks.pop(rule, None)
            return
        proj = self._projection(p, ci, as_of)
        if proj is None:
            self._skip(p, rule, "baselines.sufficiency.recent_days_missing")
            p.streaks.pop(rule, None)
            return
        p.reasons.pop(rule, None)
        projected, ctd, level = proj
        sp_days = _sp_days(c.start, c.end)
        sp_daily = sp_kwh / sp_days
        sig = robust_sigma(p.baseline_mad, p.baseline_median if p.baseline_median is not None else sp_daily)
        z = (level - sp_daily) / sig
        base = p.baseline_median
        ok = (
            projected >= cfg.factor * sp_kwh
            and projected - sp_kwh >= cfg.min_excess_kwh
            and z >= cfg.z_min
            and (base is None or level >= cfg.min_recent_ratio * base)
        )
        if not ok:
            p.streaks.pop(rule, None)
            return
        k = p.streaks.get(rule, 0) + 1
        p.streaks[rule] = k
        if k < cfg.persistence_days:
            return
        p.streaks.pop(rule, None)
        ratio = projected / sp_kwh
        self._fire(
            p,
            rule,
            cfg.severity,
            cfg.customer_facing,
            c,
            cust,
            seg,
            ts,
            alerts,
            Observed(
                cycle_to_date_kwh=round(ctd, 3),
                same_period_kwh=round(sp_kwh, 3),
                baseline_daily_kwh=_r(p.baseline_median),
                recent_daily_kwh=round(level, 3),
                projected_cycle_kwh=round(projected, 3),
                ratio=round(ratio, 3),
            ),
            {"projected": projected, "sp": sp_kwh, "ratio": ratio},
            {"z": round(z, 2), "same_period_coverage": round(sp_cov, 3), "days_elapsed": elapsed},
        )

    def _rule_sudden(
        self,
        p: Profile,
        ci: int,
        as_of: int,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        rule = "sudden_increase"
        cfg = rs.sudden_increase
        c = p.open_cycles[ci]
        fired_here = p.fired.get(rule) == c.start
        # escalation: the customer was already alerted this cycle (by this or another rule); a new,
        # sudden excursion clearly above the level of that alert may be told once more
        prev_level = None
        if (
            cfg.escalation
            and p.fired.get(CUSTOMER_FACING_KEY) == c.start
            and p.fired.get(ESCALATION) != c.start
            and CUSTOMER_LEVEL_KEY in p.fired
        ):
            prev_level = p.fired[CUSTOMER_LEVEL_KEY] / 1000.0
        if fired_here and prev_level is None:
            return
        med = p.baseline_median
        if med is None or p.baseline_days < cfg.min_baseline_days:
            self._skip(
                p,
                rule,
                "baselines.sufficiency.too_few_days",
                days=p.baseline_days,
                needed=cfg.min_baseline_days,
            )
            return
        if med <= 0:
            self._skip(p, rule, "baselines.sufficiency.zero_baseline")
            return
        # cheap exit: if the newest (misses + 1) days are all known and below the lowest
        # possible trigger, fewer than ignore_top + 1 days of the window can be high
        floor = cfg.factor * cfg.tolerance * med * min(p.weekday_factors) * min(1.0, cfg.recent_floor)
        misses = cfg.window_days - cfg.ignore_top - 1
        lo = as_of - cfg.window_days + 1
        window = self._days(p, lo, as_of + 1)
        if 0 <= misses < len(window):
            low = 0
            for v in window[len(window) - misses - 1 :]:
                if v is None or v >= floor:
                    break
                low += 1
            if low == misses + 1:
                p.reasons.pop(rule, None)
                return
        xs: list[float] = []
        wsum = 0.0
        wf = p.weekday_factors
        w0 = _dow(lo)
        for i, v in enumerate(window):
            if v is not None:
                xs.append(v)
                wsum += wf[(w0 + i) % 7]
        if len(xs) <= cfg.ignore_top or len(xs) < cfg.window_days - 1:
            self._skip(p, rule, "baselines.sufficiency.recent_days_missing", present=len(xs))
            return
        p.reasons.pop(rule, None)
        xs.sort(reverse=True)
        recent = xs[cfg.ignore_top]
        level_factor = 1.0
        # the household's level of the days before the window
        lvp = self._level(p, as_of - cfg.window_days, cfg.prior_days) if cfg.prior_days else None
        if cfg.recent_floor < 1.0 and cfg.prior_days:
            # ... lowers the expected level when lower than its 8-week median
            if lvp is not None:
                level_factor = max(cfg.recent_floor, min(1.0, lvp[0] / med))
        expected = med * level_factor * wsum / len(xs)
        ratio = recent / expected
        if ratio < cfg.factor * cfg.tolerance:
            return
        season = 1.0
        if cfg.seasonal_adjust:
            season = self._season_factor(p, as_of)
            if season > 1.0:
                expected *= season
                ratio = recent / expected
                if ratio < cfg.factor * cfg.tolerance:
                    return  # last year's own seasonal rise explains it (heating, dark evenings)
        hi = p.p95_day
        if cfg.beyond_own_spikes and hi is not None and recent <= hi:
            return  # this customer has such days regularly (their own 95th-percentile day)
        z = (recent - expected) / robust_sigma(p.baseline_mad, med)
        if z < cfg.z_min or recent - expected < cfg.min_excess_kwh_per_day:
            return
        prior_ratio = None
        if cfg.prior_days:
            lv = lvp
            if lv is not None:
                prior_ratio = recent / (lv[0] * wsum / len(xs)) if lv[0] > 0 else None
                if prior_ratio is not None and prior_ratio < cfg.prior_min_jump:
                    return  # not sudden: the level was already about as high the week before
        sev = "critical" if ratio >= cfg.critical_factor else cfg.severity
        observed = Observed(
            cycle_to_date_kwh=round(self._ctd(p, ci), 3),
            baseline_daily_kwh=round(med, 3),
            recent_daily_kwh=round(recent, 3),
            ratio=round(ratio, 3),
        )
        extra: dict[str, float | int | str | None] = {
            "z": round(z, 2),
            "expected_kwh": round(expected, 3),
            "window_days": cfg.window_days,
            "prior_ratio": None if prior_ratio is None else round(prior_ratio, 3),
            "season_factor": round(season, 3),
        }
        expl = {"recent": recent, "baseline": med, "ratio": ratio}
        if not fired_here:
            self._fire(p, rule, sev, cfg.customer_facing, c, cust, seg, ts, alerts, observed, expl, extra)
        if prev_level is not None and cfg.customer_facing and recent >= cfg.escalation_factor * prev_level:
            expl["previous"] = prev_level
            extra["previous_alert_daily_kwh"] = round(prev_level, 3)
            self._fire(
                p, ESCALATION, sev, True, c, cust, seg, ts, alerts, observed, expl, extra, escalation=True
            )

    def _season_factor(self, p: Profile, as_of: int) -> float:
        """How much this customer's daily use rose last year from the baseline weeks to these days.

        Ratio of last year's daily kWh in the cycle containing ``as_of - 365`` to
        that in the cycle containing the middle of the baseline window a year
        earlier; 1.0 without such history; clipped to [0.5, 1.5].
        """
        now_c = later = None
        mid = as_of - self.rules.late_window_days - self.rules.ring_days // 2 - 365
        for c in p.closed_cycles:
            if c.start <= as_of - 365 < c.end:
                later = c
            if c.start <= mid < c.end:
                now_c = c
        if later is None or now_c is None or later.coverage < 0.8 or now_c.coverage < 0.8:
            return 1.0
        a = later.kwh / (later.end - later.start)
        b = now_c.kwh / (now_c.end - now_c.start)
        if b <= 0:
            return 1.0
        return max(0.5, min(1.5, a / b))

    def _rule_drop(
        self,
        p: Profile,
        ci: int,
        as_of: int,
        rs: RuleSet,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
    ) -> None:
        rule = "sustained_drop"
        cfg = rs.sustained_drop
        c = p.open_cycles[ci]
        if p.fired.get(rule) == c.start:
            return
        med = p.baseline_median
        if med is None or p.baseline_days < cfg.min_baseline_days:
            self._skip(
                p,
                rule,
                "baselines.sufficiency.too_few_days",
                days=p.baseline_days,
                needed=cfg.min_baseline_days,
            )
            return
        if med < cfg.min_baseline_kwh:
            self._skip(p, rule, "baselines.sufficiency.baseline_too_low", baseline_kwh=round(med, 3))
            return
        thr = max(cfg.near_zero_kwh, cfg.fraction * med)
        # cheap exit: more recent high days than exceptions allowed
        high_days = 0
        for v in self._days(p, as_of - cfg.exception_days, as_of + 1):
            if v is not None and v > thr:
                high_days += 1
        if high_days > cfg.exception_days:
            p.reasons.pop(rule, None)
            return
        xs = [v for v in self._days(p, as_of - cfg.days + 1, as_of + 1) if v is not None]
        if len(xs) < cfg.min_present:
            self._skip(p, rule, "baselines.sufficiency.recent_days_missing", present=len(xs))
            return
        p.reasons.pop(rule, None)
        low = sum(1 for x in xs if x <= thr)
        if low < len(xs) - cfg.exception_days:
            return
        high = quantile_high(xs, 0.8)
        recent = median(xs)
        self._fire(
            p,
            rule,
            cfg.severity,
            cfg.customer_facing,
            c,
            cust,
            seg,
            ts,
            alerts,
            Observed(
                cycle_to_date_kwh=round(self._ctd(p, ci), 3),
                baseline_daily_kwh=round(med, 3),
                recent_daily_kwh=round(recent, 3),
                ratio=round(recent / med, 3),
            ),
            {"recent": recent, "baseline": med, "days": float(cfg.days)},
            {"p80_kwh": round(high, 3), "days_present": len(xs)},
        )

    def _fire(
        self,
        p: Profile,
        rule: str,
        severity: str,
        customer_facing: bool,
        c: OpenCycle,
        cust: CustomerConfig,
        seg: SegmentRef | None,
        ts: float,
        alerts: list[Alert],
        observed: Observed,
        expl_numbers: dict[str, float],
        extra: dict[str, float | int | str | None],
        *,
        escalation: bool = False,
    ) -> None:
        p.fired[rule] = c.start
        moderation: list[Reason] = []
        if escalation:
            # the one exception to one customer-facing alert per cycle: at most one escalation
            moderation.append(
                Reason(
                    code="baselines.moderation.escalation",
                    message="a new excursion clearly above the level of this cycle's earlier alert",
                    numbers={"previous_alert_daily_kwh": extra.get("previous_alert_daily_kwh")},
                )
            )
        elif customer_facing:
            if p.fired.get(CUSTOMER_FACING_KEY) == c.start:
                # moderation: at most one customer-facing alert per customer and cycle
                customer_facing = False
                moderation.append(
                    Reason(
                        code="baselines.moderation.one_customer_alert_per_cycle",
                        message="the customer was already alerted this cycle; manager only",
                    )
                )
            else:
                p.fired[CUSTOMER_FACING_KEY] = c.start
                if observed.recent_daily_kwh is not None:
                    p.fired[CUSTOMER_LEVEL_KEY] = round(observed.recent_daily_kwh * 1000)
                else:
                    p.fired.pop(CUSTOMER_LEVEL_KEY, None)
        start = _d(c.start)
        trig = dt.datetime.fromtimestamp(ts, dt.UTC)
        text = explain(rule, dict(expl_numbers))
        numbers: dict[str, float | int | str | None] = {
            k: v for k, v in observed.model_dump().items() if v is not None
        }
        numbers.update(extra)
        alerts.append(
            Alert.model_validate(
                {
                    "alert_id": alert_id(p.customer_id, rule, start),
                    "customer_id": p.customer_id,
                    "meter_ids": list(cust.meter_ids),
                    "rule": rule,
                    "severity": severity,
                    "cycle": CycleRef(start=start, end=_d(c.end - 1)),
                    "observed": observed,
                    "segment": seg if seg is not None else _EMPTY_SEG,
                    "manager_id": cust.manager_id,
                    "triggered_by": trig,
                    "created_at": self._clock() if self._clock is not None else trig,
                    "explanation": Explanation(zh_CN=text["zh-CN"], en=text["en"]),
                    "customer_facing": customer_facing,
                    "reasons": [
                        Reason(code=f"baselines.rules.{rule}", message=text["en"], numbers=numbers),
                        *moderation,
                    ],
                }
            )
        )

    # ------------------------------------------------------------------ history
    def load_history(
        self,
        profile: Profile,
        history_rows: Iterable[HistoryRow | Mapping[str, Any]],
        customer: CustomerConfig,
    ) -> Profile:
        """Bootstrap: add per-cycle or daily history; returns a new profile. No alerts.

        Whole-cycle rows become closed cycles (a row overlapping a known cycle is
        ignored). Daily rows are booked like daily readings; days already older
        than the late window are summed per billing cycle into closed cycles.

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> cust = CustomerConfig("c1", timezone="UTC")
        >>> p = Engine().load_history(Profile.new("c1"),
        ...     [{"customer_id": "c1", "start": "2023-01-01", "end": "2023-01-31", "kwh": 250.0}], cust)
        >>> [(dt.date.fromordinal(c.start), c.kwh) for c in p.closed_cycles]
        [(datetime.date(2023, 1, 1), 250.0)]
        """
        p = profile.clone()
        rows = [r if isinstance(r, HistoryRow) else HistoryRow.model_validate(r) for r in history_rows]
        cyc_rows = sorted((r for r in rows if r.start is not None), key=lambda r: r.start or dt.date.min)
        day_rows = sorted((r for r in rows if r.day is not None), key=lambda r: r.day or dt.date.min)
        for r in cyc_rows:
            assert r.start is not None and r.end is not None
            s, e = r.start.toordinal(), r.end.toordinal() + 1  # HistoryRow.end is inclusive
            self._insert_cycle(p, ClosedCycleT(s, e, round(r.kwh, 3), r.coverage))
        late: dict[int, list[float]] = {}
        for r in day_rows:
            assert r.day is not None
            d = r.day.toordinal()
            if p.newest_day is not None and d < p.newest_day - self.rules.late_window_days:
                s = cycle_containing(r.day, customer.read_day, customer.cycle_months)[0].toordinal()
                acc = late.setdefault(s, [0.0, 0.0])
                acc[0] += r.kwh
                acc[1] += r.coverage
                continue
            self._apply(p, Reading.daily(r.day, r.kwh, r.coverage), customer, None, False)
        for s, (kwh, covd) in late.items():
            e = cycle_end_for(_d(s), customer.read_day, customer.cycle_months).toordinal()
            self._insert_cycle(p, ClosedCycleT(s, e, kwh, min(1.0, covd / (e - s))))
        p.same_period_cache = None
        return p

    def _insert_cycle(self, p: Profile, c: ClosedCycleT) -> None:
        if c.end <= c.start:
            return
        for o in p.closed_cycles:
            if o.start < c.end and c.start < o.end:
                return
        for o2 in p.open_cycles:
            if o2.start < c.end and c.start < o2.end:
                return
        p.closed_cycles.append(c)
        p.closed_cycles.sort(key=lambda x: x.start)
        if len(p.closed_cycles) > MAX_CYCLES:
            del p.closed_cycles[: len(p.closed_cycles) - MAX_CYCLES]

    # ------------------------------------------------------------------ read model
    def snapshot(
        self,
        profile: Profile,
        customer: CustomerConfig,
        segment: SegmentRef | None,
        now: dt.datetime,
    ) -> BaselineSnapshot:
        """The Ops API's view of a profile (``GET /v1/customers/{id}/baseline``).

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> snap = Engine().snapshot(Profile.new("c1"), CustomerConfig("c1", timezone="UTC"), None,
        ...                          dt.datetime(2024, 5, 3, tzinfo=dt.UTC))
        >>> snap.cycle.start, snap.cycle.end, snap.cycle.cycle_to_date_kwh
        (datetime.date(2024, 5, 1), datetime.date(2024, 5, 31), 0.0)
        """
        p = profile
        now_day = local_date(now.timestamp(), customer.tz).toordinal()
        as_of = dt.datetime.fromtimestamp(p.latest_ts, dt.UTC) if p.latest_ts is not None else now
        projected = None
        if p.open_cycles:
            ci = len(p.open_cycles) - 1
            c = p.open_cycles[ci]
            ctd = self._ctd(p, ci)
            last = p.newest_day if p.newest_day is not None else now_day
            days_elapsed = float(min(c.end - c.start, last - c.start + 1))
            if p.newest_day is not None:
                proj = self._projection(p, ci, p.newest_day - 1)
                if proj is not None:
                    projected = round(proj[0], 3)
            start, end = c.start, c.end
        else:
            s, e = cycle_containing(_d(now_day), customer.read_day, customer.cycle_months)
            start, end = s.toordinal(), e.toordinal()
            ctd, days_elapsed = 0.0, float(now_day - start + 1)
        if p.register_estimate is not None and p.register_read is not None:
            ctd += max(
                0.0, p.register_estimate[1] - p.register_read[1]
            )  # provisional, until the next actual read
        sp = self._same_period(p, start, end)
        s1, e1 = same_period(_d(start), _d(end))
        reasons = [
            Reason(code=str(v[0]), message=k, numbers=dict(v[1])) for k, v in sorted(p.reasons.items())
        ]
        open_alerts = [
            alert_id(p.customer_id, rule, _d(start)) for rule in RULES if p.fired.get(rule) == start
        ]
        return BaselineSnapshot(
            customer_id=p.customer_id,
            as_of=as_of,
            cycle=CycleNow(
                start=_d(start),
                end=_d(end - 1),
                cycle_to_date_kwh=round(ctd, 3),
                days_elapsed=days_elapsed,
                projected_kwh=projected,
            ),
            same_period=SamePeriod(
                start=s1 if sp else None,
                end=(e1 - dt.timedelta(days=1)) if sp else None,
                kwh=round(sp[0], 3) if sp else None,
                coverage=round(sp[1], 3) if sp else None,
            ),
            baseline=BaselineBlock(
                daily_kwh=_r(p.baseline_median),
                cycles=[
                    ClosedCycle(
                        start=_d(c.start), end=_d(c.end - 1), kwh=round(c.kwh, 3), coverage=c.coverage
                    )
                    for c in p.closed_cycles
                ],
            ),
            segment=segment if segment is not None else SegmentRef(),
            open_alerts=open_alerts,
            manager_id=customer.manager_id,
            recent_daily_kwh=(round(lv[0], 3) if (lv := self._recent(p)) is not None else None),
            reasons=reasons,
            processed_at=now,
        )

    def _recent(self, p: Profile) -> tuple[float, int] | None:
        if p.newest_day is None:
            return None
        return self._level(p, p.newest_day - 1)

    def segment_features(self, profile: Profile, customer: CustomerConfig) -> dict[str, float]:
        """Named, stable features for the online segmenter (missing values are neutral).

        Keys: ``level_kwh_day``, ``variability``, ``seasonality``, ``trend``,
        ``night_share``, ``weekend_ratio``, ``arrears_amount``, ``arrears_count``,
        ``complaints_count``, ``rented``, ``tariff_code``.

        >>> from baselines.customer import CustomerConfig
        >>> f = Engine().segment_features(Profile.new("c1"), CustomerConfig("c1", occupancy="rented"))
        >>> sorted(f)[:3], f["rented"]
        (['arrears_amount', 'arrears_count', 'complaints_count'], 1.0)
        """
        p = profile
        med = p.baseline_median or 0.0
        variability = (robust_sigma(p.baseline_mad, med) / med) if med > 0 else 0.0
        full = [c for c in p.closed_cycles if c.coverage >= 0.8 and c.end > c.start]
        daily = [c.kwh / (c.end - c.start) for c in full[-12:]]
        seasonality = 0.0
        trend = 0.0
        if len(daily) >= 4:
            m = sum(daily) / len(daily)
            if m > 0:
                sd = (sum((x - m) ** 2 for x in daily) / len(daily)) ** 0.5
                seasonality = sd / m
        if len(full) >= 13:
            # latest cycle vs the same cycle a year before (seasonally matched growth)
            last = full[-1]
            sp = self._same_period(p, last.start, last.end)
            if sp is not None and sp[0] > 0 and sp[1] >= 0.8:
                trend = last.kwh / sp[0] - 1.0
        weekday = sum(p.weekday_factors[:5]) / 5
        weekend_ratio = (sum(p.weekday_factors[5:]) / 2) / weekday if weekday > 0 else 1.0
        return {
            "level_kwh_day": round(med, 4),
            "variability": round(min(variability, 5.0), 4),
            "seasonality": round(seasonality, 4),
            "trend": round(max(-1.0, min(trend, 5.0)), 4),
            "night_share": round(p.night_share if p.night_share is not None else 0.0, 4),
            "weekend_ratio": round(weekend_ratio, 4),
            "arrears_amount": float(customer.arrears_amount),
            "arrears_count": float(customer.arrears_count),
            "complaints_count": float(customer.complaints_count),
            "rented": 1.0 if customer.occupancy == "rented" else 0.0,
            "tariff_code": {"residential": 0.0, "commercial": 1.0, "industrial": 2.0}.get(
                customer.tariff, 0.0
            ),
        }


def _sp_days(start: int, end: int) -> int:
    s1, e1 = same_period(_d(start), _d(end))
    return max(1, (e1 - s1).days)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
