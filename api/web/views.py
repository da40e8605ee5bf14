"""Data of the workbench pages, shaped for the templates (no HTTP here)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from api.deps import Caller
from api.routes.customers import manager_of
from api.web import charts
from api.web.i18n import t
from api.workbench.alerts import AlertItem
from api.workbench.daily import DailySeries, default_range, last_year, series
from meterwatch.contracts import BaselineSnapshot, CustomerRecord
from meterwatch.logs import mask_phone

CALLBACK_H = 24


def _s(x: bytes | str | None) -> str | None:
    return x.decode() if isinstance(x, bytes) else x


def parse_ts(v: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Row:
    """One alert as a worklist or timeline row."""

    alert_id: str
    customer_id: str
    customer_name: str
    rule: str
    severity: str
    explanation: str
    stake: str
    age: str
    callback: str
    overdue: bool
    status: str
    state: dict[str, str]
    triggered_by: str


def stake_text(doc: dict[str, Any]) -> str:
    """Money at stake when the alert has it, else the ratio.

    >>> stake_text({"money": {"currency": "CNY", "extra_vs_same_period": 112.5}})
    '+112.50 CNY'
    >>> stake_text({"observed": {"ratio": 3.21}}), stake_text({})
    ('×3.2', '')
    """
    money = doc.get("money")
    if isinstance(money, dict) and isinstance(money.get("extra_vs_same_period"), (int, float)):
        return f"{money['extra_vs_same_period']:+.2f} {money.get('currency', '')}".strip()
    obs = doc.get("observed")
    ratio = obs.get("ratio") if isinstance(obs, dict) else None
    return f"×{ratio:.1f}" if isinstance(ratio, (int, float)) else ""


def row_of(item: AlertItem, name: str, lang: str, now: dt.datetime) -> Row:
    d = item.doc
    created = parse_ts(d.get("created_at")) or parse_ts(d.get("triggered_by")) or now
    hours = max(0, int((now - created).total_seconds() // 3600))
    age = t(lang, "age.hours", h=hours) if hours < 48 else t(lang, "age.days", d=hours // 24)
    left = CALLBACK_H - (now - created).total_seconds() / 3600
    done = item.status == "resolved"
    if done:
        callback, overdue = t(lang, "callback.done"), False
    elif left < 0:
        callback, overdue = t(lang, "callback.overdue", h=int(-left)), True
    else:
        callback, overdue = t(lang, "callback.left", h=int(left)), False
    ex = d.get("explanation")
    expl: dict[str, Any] = ex if isinstance(ex, dict) else {}
    return Row(
        alert_id=str(d.get("alert_id", "")),
        customer_id=str(d.get("customer_id", "")),
        customer_name=name,
        rule=str(d.get("rule", "")),
        severity=str(d.get("severity", "")),
        explanation=str(expl.get(lang) or expl.get("en") or ""),
        stake=stake_text(d),
        age=age,
        callback=callback,
        overdue=overdue,
        status=item.status,
        state=item.state,
        triggered_by=str(d.get("triggered_by", ""))[:16].replace("T", " "),
    )


async def names(caller: Caller, customer_ids: list[str]) -> dict[str, str]:
    uniq = list(dict.fromkeys(customer_ids))
    if not uniq:
        return {}
    raws = await caller.rt.hot.mget(*[caller.rt.keys.customer(c) for c in uniq])
    out: dict[str, str] = {}
    for cid, raw in zip(uniq, raws, strict=True):
        name = ""
        if raw is not None:
            doc = orjson.loads(raw)
            if isinstance(doc, dict):
                name = str(doc.get("name") or "")
        out[cid] = name
    return out


@dataclass
class CustomerData:
    record: CustomerRecord
    snapshot: BaselineSnapshot | None
    daily: DailySeries
    segment_kind: str | None
    phone_masked: str
    consent: bool
    #: the landlord of a rented home: (name, phone), the phone in full for the customer's own
    #: manager (who calls them, as in the Ops API), masked for ops; None for any other home
    landlord: tuple[str, str] | None
    notifications: list[dict[str, Any]]
    cycle_chart: Any
    daily_chart: Any
    cycles_chart: Any


async def load_customer(caller: Caller, customer_id: str, lang: str) -> CustomerData | None:
    """Everything the customer page shows; None when missing or not the caller's."""
    keys, snaps = caller.rt.keys, caller.rt.snapshots
    state, old, cust, blob, segs = await caller.read(
        lambda p: (
            [p.get(name) for name in snaps.names(customer_id)]
            + [p.get(keys.daily(customer_id)), p.get(keys.segments)]
        )
    )
    if cust is None or not caller.may_read(manager_of(cust)):
        return None
    base = snaps.view(state, old, cust)
    record = CustomerRecord.model_validate_json(cust)
    snap = BaselineSnapshot.model_validate_json(base) if base is not None else None
    start, end = default_range(blob, dt.datetime.now(dt.UTC).date())
    daily = series(customer_id, blob, start, end)
    kind = None
    if snap is not None and snap.segment.id is not None and segs is not None:
        for s in orjson.loads(segs):
            if isinstance(s, dict) and s.get("id") == snap.segment.id:
                kind = s.get("kind")
    rows = [(p.day, p.kwh, p.expected_kwh, p.band_low, p.band_high, p.last_year_kwh) for p in daily.days]
    return CustomerData(
        record=record,
        snapshot=snap,
        daily=daily,
        segment_kind=snap.segment.kind or kind if snap is not None else None,
        phone_masked=mask_phone(record.phone) if record.phone else "",
        consent=record.sms_opt_in,
        landlord=_landlord(record, caller.is_ops),
        notifications=[],
        cycle_chart=_cycle_chart(snap, blob, customer_id, lang),
        daily_chart=charts.daily_chart(rows, lang),
        cycles_chart=charts.cycles_chart(
            [(c.start, c.end, c.kwh, c.coverage) for c in (snap.baseline.cycles if snap else [])][-36:], lang
        ),
    )


def _landlord(record: CustomerRecord, ops: bool) -> tuple[str, str] | None:
    ll = record.landlord if record.occupancy == "rented" else None
    if ll is None:
        return None
    return ll.name, mask_phone(ll.phone) if ops else ll.phone


def _cycle_chart(snap: BaselineSnapshot | None, blob: bytes | None, customer_id: str, lang: str) -> Any:
    if snap is None:
        return charts.cumulative_chart([], [], [], None, lang)
    start, end = snap.cycle.start, snap.cycle.end
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    now = series(customer_id, blob, start, end)
    this = [p.kwh for p in now.days]
    sp_start = snap.same_period.start or last_year(start)
    sp_end = snap.same_period.end or last_year(end)
    sp = series(customer_id, blob, sp_start, sp_end)
    same = [p.kwh for p in sp.days][: len(days)]
    if (
        all(v is None for v in same) and snap.same_period.kwh
    ):  # only the cycle total is known: a straight line
        per = snap.same_period.kwh / max(len(days), 1)
        same = [per] * len(days)
    return charts.cumulative_chart(days, this, same, snap.cycle.projected_kwh, lang)


async def notification_log(caller: Caller, alert_ids: list[str]) -> list[dict[str, Any]]:
    """The notifier's records of these alerts (SMS, push, digest), newest first; phones never shown."""
    keys = caller.rt.keys
    if not alert_ids:
        return []
    lists = await caller.read(lambda p: [p.get(keys.notifier_alert(a)) for a in alert_ids])
    nids: list[tuple[str, str]] = []
    for aid, raw in zip(alert_ids, lists, strict=True):
        if raw is None:
            continue
        try:
            ids = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(ids, str):
            ids = [ids]
        nids += [(aid, str(n)) for n in ids if n] if isinstance(ids, list) else []
    if not nids:
        return []
    hashes = await caller.read(lambda p: [p.hgetall(keys.notifier_notification(n)) for _, n in nids])
    out: list[dict[str, Any]] = []
    for (aid, nid), h in zip(nids, hashes, strict=True):
        if not h:
            continue
        d = {_s(k): _s(v) for k, v in h.items()}
        out.append(
            {
                "alert_id": aid,
                "notification_id": nid,
                "channel": d.get("channel", ""),
                "status": d.get("status", ""),
                "reason": d.get("reason", ""),
                "created_at": (d.get("created_at") or "")[:16].replace("T", " "),
            }
        )
    return sorted(out, key=lambda n: n["created_at"], reverse=True)
