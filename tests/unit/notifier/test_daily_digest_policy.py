"""Which manager pushes wait for the daily digest (pure: notifier.policy, notifier.layout, no Redis)."""

from __future__ import annotations

import datetime as dt
import json

from meterwatch.contracts import SegmentRef
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.dailydigest import view
from notifier.ids import make_nid
from notifier.layout import encode
from notifier.policy import decide, digest_policy

from .samples import alert, customer

UTC = dt.UTC
EVENING = dt.datetime(2025, 1, 21, 17, 30, tzinfo=UTC)  # 01:30 on the 22nd in Shanghai
S = Settings(quiet_hours_start=0, quiet_hours_end=0)


def test_a_manager_only_alert_is_held_for_the_day_s_digest_and_a_customer_facing_one_is_not() -> None:
    p = decide(alert(customer_facing=False), customer(), True, {}, S, EVENING)
    assert p.sms is None and p.push.digest is None and p.push.daily is not None
    assert p.push.daily.day == dt.date(2025, 1, 21)
    assert p.push.daily.due == dt.datetime(2025, 1, 22, 0, 5, tzinfo=UTC)
    assert p.push.daily.nid == make_nid("ddigest", "mgr-1", "2025-01-21")
    cf = decide(alert(customer_facing=True), customer(), True, {}, S, EVENING)
    assert cf.push.daily is None and cf.push.digest is not None and cf.sms is not None


def test_the_digest_day_follows_the_configured_time_zone() -> None:
    s = S.model_copy(update={"manager_digest_timezone": "Asia/Shanghai", "manager_digest_grace_s": 0})
    p = decide(alert(customer_facing=False), customer(), True, {}, s, EVENING)
    assert p.push.daily is not None
    assert p.push.daily.day == dt.date(2025, 1, 22)
    assert p.push.daily.due == dt.datetime(2025, 1, 22, 16, 0, tzinfo=UTC)


def test_off_or_a_no_digest_segment_pushes_manager_only_alerts_at_once() -> None:
    off = S.model_copy(update={"manager_digest_daily": False})
    assert decide(alert(customer_facing=False), customer(), True, {}, off, EVENING).push.daily is None
    premium = alert(customer_facing=False, segment=SegmentRef(id=2, label="premium"))
    assert decide(premium, customer(), True, {}, S, EVENING).push.daily is None


def test_the_ingest_plan_carries_the_alert_and_the_day_s_keys() -> None:
    p = decide(alert(customer_facing=False), customer(), True, {}, S, EVENING)
    enc = encode(p, Keys("t:"), "t:metrics", 400, 500, keep_days=30)
    (push,) = enc["notifications"]
    d = push["daily"]
    assert d["items_key"].endswith("ddigest:mgr-1:2025-01-21")
    assert d["closed_key"].endswith("ddigestclosed:mgr-1:2025-01-21")
    assert d["ttl"] == str(30 * 86400)
    assert json.loads(d["item"])["alert_id"] == p.alert.alert_id
    assert "digest" not in push  # never both digests


def test_the_view_names_each_alert_s_push_and_applies_the_settings_policy() -> None:
    s = S.model_copy(
        update={
            "manager_digest_actionable_per_day": 1,
            "manager_digest_fold_rules": [],
            "manager_digest_min_excess_kwh": 0.0,
        }
    )
    raws = [
        alert(f"c{i}", rule="sustained_drop", customer_facing=False).model_dump_json(by_alias=True)
        for i in range(3)
    ]
    v = view("mgr-1", dt.date(2025, 1, 21), raws, digest_policy(s))
    assert (v.status, v.actionable_count, v.folded_count) == ("open", 1, 2)
    assert {i.notification_id for i in v.items} == {
        make_nid("push", f"c{i}:sustained_drop:2025-01-01") for i in range(3)
    }
    assert view("mgr-1", dt.date(2025, 1, 21), [], digest_policy(s)).status == "empty"


def test_an_unreadable_held_alert_is_left_out_of_the_view_not_the_whole_digest() -> None:
    good = alert("c1", rule="sustained_drop", customer_facing=False).model_dump_json(by_alias=True)
    v = view("mgr-1", dt.date(2025, 1, 21), [good, '{"alert_id": "broken"}'], digest_policy(S))
    assert [i.customer_id for i in v.items] == ["c1"]
