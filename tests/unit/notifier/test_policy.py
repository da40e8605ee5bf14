"""The routing decision as a pure function: channels, status, reason, due time (no Redis)."""

from __future__ import annotations

import datetime as dt

import pytest

from meterwatch.contracts import CustomerRecord, SegmentRef
from meterwatch.keys import Keys
from meterwatch.settings import SegmentPolicy, Settings
from notifier.ids import make_nid
from notifier.layout import encode
from notifier.policy import decide

from .samples import alert, customer

UTC = dt.UTC
DAY = dt.datetime(2025, 1, 21, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
NIGHT = dt.datetime(2025, 1, 21, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
OFF = Settings(quiet_hours_start=0, quiet_hours_end=0)


def test_every_alert_goes_to_the_manager_and_customer_facing_ones_to_the_customer() -> None:
    p = decide(alert(), customer(), True, {}, OFF, DAY)
    assert p.manager_id == "mgr-1" and p.push.nid == make_nid("push", p.alert.alert_id)
    assert p.push.payload["kind"] == "alert" and p.push.payload["customer_name"] == "张伟"
    assert p.sms is not None and (p.sms.status, p.sms.reason, p.sms.due) == ("queued", "", DAY)
    assert p.sms.limit is not None and p.sms.limit.max_per_cycle == 1 and p.sms.limit.min_gap_s == 7 * 86400
    assert p.inbox_item["notification_ids"] == [p.push.nid, p.sms.nid]
    assert decide(alert(customer_facing=False), customer(), True, {}, OFF, DAY).sms is None


@pytest.mark.parametrize(
    ("manager_id", "registry_manager", "want"),
    [("mgr-a", "mgr-b", "mgr-a"), (None, "mgr-b", "mgr-b"), (None, None, "unassigned")],
)
def test_the_manager_is_the_alert_s_then_the_registry_s_then_unassigned(
    manager_id: str | None, registry_manager: str | None, want: str
) -> None:
    p = decide(alert(manager_id=manager_id), customer(manager_id=registry_manager), True, {}, OFF, DAY)
    assert p.manager_id == want


@pytest.mark.parametrize(
    ("record", "consent", "policies", "reason"),
    [
        (None, True, {}, "customer.unknown"),
        (customer(phone=None), True, {}, "customer.no_phone"),
        (customer(), False, {}, "moderation.opted_out"),
        (customer(), True, {"ordinary": SegmentPolicy(sms="never")}, "policy.no_sms"),
    ],
)
def test_a_blocked_sms_is_suppressed_with_its_reason_and_reserves_nothing(
    record: CustomerRecord | None, consent: bool, policies: dict[str, SegmentPolicy], reason: str
) -> None:
    s = OFF.model_copy(update={"notifier_segment_policies": policies or OFF.notifier_segment_policies})
    p = decide(alert(), record, consent, {}, s, DAY)
    assert p.sms is not None
    assert (p.sms.status, p.sms.reason, p.sms.limit) == ("suppressed", reason, None)
    assert (p.sms.text is None) == (record is None)


def test_quiet_hours_defer_to_the_customer_s_morning() -> None:
    p = decide(alert(), customer(), True, {}, Settings(), NIGHT)
    assert p.sms is not None
    assert (p.sms.status, p.sms.reason) == ("deferred", "moderation.quiet_hours")
    assert p.sms.due == dt.datetime(2025, 1, 22, 0, 0, tzinfo=UTC)  # 08:00 local
    assert p.sms.detail == "until 2025-01-22T00:00:00+00:00"
    london = decide(alert(), customer(timezone="Europe/London"), True, {}, Settings(), NIGHT)
    assert london.sms is not None and london.sms.status == "queued"  # 15:30 in London


def test_segment_policies_hold_for_the_manager_or_let_the_manager_call_first() -> None:
    sensitive = decide(alert(segment=SegmentRef(id=4, label="sensitive")), customer(), True, {}, OFF, DAY)
    assert sensitive.sms is not None and (sensitive.sms.status, sensitive.sms.reason) == (
        "held",
        "policy.after_manager",
    )
    assert sensitive.sms.limit is not None  # a held SMS reserves its place in the cycle
    premium = decide(alert(segment=SegmentRef(id=6, label="Premium")), customer(), True, {}, OFF, DAY)
    assert premium.policy == "premium" and premium.push.digest is None  # never collapsed into the digest
    assert premium.sms is not None and (premium.sms.status, premium.sms.reason) == (
        "deferred",
        "policy.manager_first",
    )
    assert premium.sms.due == DAY + dt.timedelta(minutes=60)


def test_the_digest_rule_names_the_hour_and_its_end() -> None:
    p = decide(
        alert(), customer(), True, {}, OFF.model_copy(update={"manager_digest_threshold_per_hour": 3}), DAY
    )
    d = p.push.digest
    assert d is not None and d.threshold == 3 and d.hour == int(DAY.timestamp()) // 3600
    assert d.due == DAY + dt.timedelta(hours=1) and d.nid == make_nid("digest", "mgr-1", str(d.hour))
    off = decide(
        alert(), customer(), True, {}, OFF.model_copy(update={"manager_digest_threshold_per_hour": 0}), DAY
    )
    assert off.push.digest is None


def test_the_sms_names_whom_to_call() -> None:
    p = decide(alert(), customer(), True, {"name": "李娜", "phone": "13812345678"}, OFF, DAY)
    assert p.sms is not None and p.sms.text is not None and "李娜13812345678" in p.sms.text.text
    q = decide(alert(), customer(), True, {}, OFF, DAY)
    assert q.sms is not None and q.sms.text is not None and OFF.notifier_hotline in q.sms.text.text


def test_the_store_layout_of_a_plan() -> None:
    p = decide(alert(), customer(), True, {}, Settings(), NIGHT)
    args = encode(p, Keys("mw:"), "mw:metrics:notifier", 400, 500)
    push, sms = args["notifications"]
    assert args["dedupe_key"] == f"mw:n:alert:{p.alert.alert_id}" and args["dedupe_ttl"] == str(400 * 86400)
    assert push["key"] == f"mw:n:notif:{p.push.nid}" and push["status"] == "queued"
    assert push["digest"]["count_key"].startswith("mw:n:mgrhour:mgr-1:")
    assert sms["status"] == "deferred" and sms["due_ms"] == "1737504000000"
    assert sms["sms_limit"]["cycle_key"] == "mw:n:smscycle:c1:2025-01-01"
    fields = dict(zip(sms["fields"][::2], sms["fields"][1::2], strict=True))
    assert fields["phone"] == "+8613800138000" and fields["segments"] == "1" and fields["claim"] == "0"
    assert args["inbox"]["channel"] == "mw:n:inboxch:mgr-1"
