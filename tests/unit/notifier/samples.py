"""Alerts and registry records for the notifier's unit tests (no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from meterwatch.contracts import Alert, CustomerRecord, CycleRef, Explanation, Observed, SegmentRef

UTC = dt.UTC


def alert(
    customer_id: str = "c1",
    rule: str = "same_period_reached",
    segment: SegmentRef | None = None,
    manager_id: str | None = "mgr-1",
    customer_facing: bool = True,
    cycle_start: dt.date = dt.date(2025, 1, 1),
) -> Alert:
    return Alert(
        alert_id=f"{customer_id}:{rule}:{cycle_start.isoformat()}",
        customer_id=customer_id,
        meter_ids=[f"m-{customer_id}"],
        rule=rule,
        severity="warning",
        cycle=CycleRef(start=cycle_start, end=cycle_start + dt.timedelta(days=31)),
        observed=Observed(
            cycle_to_date_kwh=312.4,
            same_period_kwh=298.0,
            baseline_daily_kwh=9.6,
            recent_daily_kwh=14.9,
            projected_cycle_kwh=484.2,
            ratio=1.05,
        ),
        segment=segment or SegmentRef(id=1, label="ordinary"),
        manager_id=manager_id,
        triggered_by=dt.datetime.combine(cycle_start + dt.timedelta(days=20), dt.time(8), tzinfo=UTC),
        created_at=dt.datetime(2025, 1, 21, 8, tzinfo=UTC),
        explanation=Explanation.model_validate({"zh-CN": "本期用电已达去年同期全期用电。", "en": "Reached."}),
        customer_facing=customer_facing,
    )


def customer(customer_id: str = "c1", **kw: Any) -> CustomerRecord:
    base: dict[str, Any] = dict(
        customer_id=customer_id,
        meter_ids=[f"m-{customer_id}"],
        name="张伟",
        phone="+8613800138000",
        manager_id="mgr-1",
        timezone="Asia/Shanghai",
        language="zh-CN",
        sms_opt_in=True,
    )
    base.update(kw)
    return CustomerRecord.model_validate(base)
