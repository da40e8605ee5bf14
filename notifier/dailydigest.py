"""The manager's daily digest in the notifier (the ranking itself: ``baselines.digest``).

At ingest (``notifier.policy``), the push of a manager-only alert is ``held`` (reason
``moderation.manager_daily_digest``) and the alert is added to the manager's day
(``ddigest:{manager}:{day}``); one digest notification per manager and day is due when the
day ends (``MW_MANAGER_DIGEST_TIMEZONE``) plus ``MW_MANAGER_DIGEST_GRACE_S``.

When it is due, ``make`` closes the day (atomically with reading its alerts: an alert recorded
later is pushed at once, never held for a digest that is gone), ranks the alerts
(``build_digest``), releases the push of each *actionable* alert (``held`` -> ``queued``,
reason ``digest.actionable``), marks every other push ``digested`` (reason
``moderation.manager_daily_digest``), keeps the digest as made (``ddigestdoc``, queryable
through ``GET /v1/managers/{id}/digest``), adds it to the inbox and returns the digest push.
Every step is idempotent: a replica that takes over a half-made digest makes the same one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from baselines.digest import DigestItem, DigestPolicy, build_digest, digest_day
from meterwatch.contracts import Alert
from meterwatch.settings import Settings
from notifier import layout
from notifier.ids import iso, make_nid
from notifier.policy import digest_policy
from notifier.store import Store

log = logging.getLogger("meterwatch.notifier.dailydigest")


class DailyDigestItem(DigestItem):
    """A ranked manager-only alert, with the manager push it became (released or folded)."""

    notification_id: str


class DailyDigestView(BaseModel):
    """``GET /v1/managers/{manager_id}/digest``: one manager's digest of one day.

    ``status``: ``closed`` (made: the actionable alerts were pushed, the rest folded),
    ``open`` (the day is still running: the ranking so far, nothing pushed yet), ``empty``
    (no manager-only alert that day, or older than ``MW_MANAGER_DIGEST_KEEP_DAYS``).
    """

    manager_id: str
    day: dt.date
    status: Literal["open", "closed", "empty"]
    made_at: dt.datetime | None = None
    notification_id: str
    policy: DigestPolicy
    actionable_count: int = 0
    folded_count: int = 0
    items: list[DailyDigestItem] = Field(default_factory=list)


def view(manager_id: str, day: dt.date, raws: list[str], policy: DigestPolicy, **kw: Any) -> DailyDigestView:
    """The digest of the alerts ``raws`` (Alert JSON); ``kw``: ``status``, ``made_at``."""
    alerts: list[Alert] = []
    for r in raws:
        try:
            alerts.append(Alert.model_validate_json(r))
        except ValidationError as e:  # written by the ingest from a valid Alert: never expected
            log.warning("daily digest of %s on %s: an unreadable alert left out (%s)", manager_id, day, e)
    d = build_digest(manager_id, day, alerts, policy)
    items = [DailyDigestItem(**i.model_dump(), notification_id=make_nid("push", i.alert_id)) for i in d.items]
    return DailyDigestView(
        manager_id=manager_id,
        day=day,
        status=kw.get("status", "open" if items else "empty"),
        made_at=kw.get("made_at"),
        notification_id=make_nid("ddigest", manager_id, day.isoformat()),
        policy=policy,
        actionable_count=d.actionable_count,
        folded_count=d.folded_count,
        items=items,
    )


async def make(store: Store, s: Settings, nid: str, h: dict[str, str], now: dt.datetime) -> DailyDigestView:
    """Close the day, release the actionable pushes, fold the rest, keep the digest (see module doc)."""
    mgr, day = h.get("manager_id", ""), dt.date.fromisoformat(h.get("day", ""))
    keep = s.manager_digest_keep_days * 86400
    raws = await store.close_daily(
        h.get("items_key", ""), layout.daily_closed_key(store.k, mgr, day.isoformat()), keep
    )
    v = view(mgr, day, raws, digest_policy(s), status="closed", made_at=now)
    for i in v.items:
        if i.actionable:
            now_ms = int(now.timestamp() * 1000)
            done = await store.transition(
                i.notification_id,
                ["held"],
                "queued",
                "digest.actionable",
                now,
                now_ms,
                "push_released_by_digest",
                f"rank {i.rank} of the daily digest {nid}",
            )
            if done == 1:
                await store.r.hset(store.notif_key(i.notification_id), "due_ms", str(now_ms))
        else:
            await store.transition(
                i.notification_id,
                ["held"],
                "digested",
                "moderation.manager_daily_digest",
                now,
                None,
                "push_digested_daily",
                f"rank {i.rank}, folded into the daily digest {nid}",
            )
    # the first making is kept (a retried digest push makes the same digest again, a later made_at)
    await store.r.set(
        layout.daily_doc_key(store.k, mgr, day.isoformat()), v.model_dump_json(), ex=keep, nx=True
    )
    return v


async def read(store: Store, s: Settings, manager_id: str, day: dt.date) -> DailyDigestView:
    """The digest as made, else the ranking so far of the running day, else an empty one."""
    raw = await store.r.get(layout.daily_doc_key(store.k, manager_id, day.isoformat()))
    if raw:
        return DailyDigestView.model_validate_json(raw)
    raws = await store.daily_items(layout.daily_items_key(store.k, manager_id, day.isoformat()))
    return view(manager_id, day, raws, digest_policy(s))


def today(s: Settings, now: dt.datetime) -> dt.date:
    """The running digest day."""
    return digest_day(now, s.manager_digest_timezone)


def _line(i: DailyDigestItem, landlord: dict[str, str] | None = None) -> dict[str, Any]:
    line = {
        "alert_id": i.alert_id,
        "customer_id": i.customer_id,
        "rule": i.rule,
        "severity": i.severity,
        "rank": i.rank,
        "stake": i.stake.model_dump(),
        "notification_id": i.notification_id,
        "reason": i.reason,
    }
    if landlord is not None:  # a rented home: the landlord to call (notifier.landlord)
        line["landlord"] = landlord
    return line


def payload(
    v: DailyDigestView, nid: str, landlords: Mapping[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """The digest push: the day's ranking (actionable first), counts and a text; ``landlords``:
    customer_id -> the landlord {name, phone} of a rented home, added to its lines."""
    landlords = landlords or {}
    text = daily_digest_text(v)
    return {
        "kind": "daily_digest",
        "notification_id": nid,
        "manager_id": v.manager_id,
        "day": v.day.isoformat(),
        "count": len(v.items),
        "actionable_count": v.actionable_count,
        "folded_count": v.folded_count,
        "items": [_line(i, landlords.get(i.customer_id)) for i in v.items],
        "title": f"{v.day.isoformat()}: {v.folded_count} alerts in your daily digest",
        "text": text,
    }


def inbox_item(v: DailyDigestView, nid: str, at: dt.datetime) -> str:
    """The digest's inbox entry (kind ``digest``), naming every folded alert's push."""
    item = {
        "id": make_nid("inbox", "ddigest", nid),
        "kind": "digest",
        "at": iso(at),
        "manager_id": v.manager_id,
        "title": f"{v.day.isoformat()}: {v.folded_count} alerts in your daily digest",
        "text": daily_digest_text(v),
        "notification_ids": [nid, *(i.notification_id for i in v.items if not i.actionable)],
    }
    return json.dumps(item, ensure_ascii=False)


def daily_digest_text(v: DailyDigestView) -> dict[str, str]:
    """The digest's sentence in both languages.

    >>> v = DailyDigestView(manager_id="m1", day=dt.date(2024, 3, 1), status="closed",
    ...                     notification_id="n", policy=DigestPolicy(), actionable_count=2, folded_count=5)
    >>> daily_digest_text(v)["en"]
    '2024-03-01: 5 more manager-only alerts, ranked by what is at stake (2 sent to you on their own).'
    """
    d = v.day.isoformat()
    return {
        "zh-CN": f"{d}：另有{v.folded_count}条仅供客户经理参考的预警已按涉及金额/电量排序汇总"
        f"（其中{v.actionable_count}条已单独推送），请在收件箱中查看。",
        "en": f"{d}: {v.folded_count} more manager-only alerts, ranked by what is at stake "
        f"({v.actionable_count} sent to you on their own).",
    }
