"""Rented homes (issue #15): the landlord on the manager's notification and the landlord's SMS,
as pure decisions and their Redis layout (no Redis)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

import pytest

from meterwatch.contracts import Alert, CustomerRecord, Observed, Reason
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.landlord import landlord_key, sms_nid
from notifier.layout import encode
from notifier.policy import LANDLORD_NO_CYCLE_LIMIT, decide

from .samples import alert, customer

UTC = dt.UTC
DAY = dt.datetime(2025, 1, 21, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
NIGHT = dt.datetime(2025, 1, 21, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
OFF = Settings(quiet_hours_start=0, quiet_hours_end=0)
LANDLORD = {"name": "王先生", "phone": "+8613900139000"}
PROFILE = {"name": "李娜", "phone": "13812345678"}


def drop(**kw: object) -> Alert:
    """A ``sustained_drop`` alert as the rule fires it: manager-only, with its figures and window."""
    a = alert(rule="sustained_drop", customer_facing=False, **kw)  # type: ignore[arg-type]
    observed = Observed(cycle_to_date_kwh=37.2, baseline_daily_kwh=8.6, recent_daily_kwh=0.3, ratio=0.035)
    reason = Reason(code="baselines.rules.sustained_drop", numbers={"p80_kwh": 0.4, "days": 14})
    return a.model_copy(update={"observed": observed, "reasons": [reason]})


def rented(**kw: Any) -> CustomerRecord:
    return customer(occupancy="rented", landlord=LANDLORD, **kw)


def test_a_rented_home_s_long_drop_plans_one_sms_to_the_landlord_and_the_manager_sees_the_landlord() -> None:
    p = decide(drop(), rented(), True, PROFILE, OFF, DAY)
    ll = p.landlord_sms
    assert ll is not None and (ll.recipient, ll.status, ll.reason, ll.due) == ("landlord", "queued", "", DAY)
    assert ll.nid == sms_nid(p.alert) != p.push.nid and p.sms is None  # manager-only: no customer SMS
    assert ll.limit is not None and ll.limit.min_gap_s == 30 * 86400
    assert ll.limit.max_per_cycle == LANDLORD_NO_CYCLE_LIMIT  # the tenant's cycle is not the landlord's
    assert p.nids == [p.push.nid, ll.nid] and p.inbox_item["notification_ids"] == p.nids
    for item in (p.inbox_item, p.push.payload):
        assert item["landlord"] == LANDLORD
        assert item["text"]["en"].endswith("\nrented home: landlord 王先生 +8613900139000")
        assert item["text"]["zh-CN"].endswith("\n出租房：房东王先生 +8613900139000")
    # laid out for the ingest script: the landlord's number, the per-landlord limit keys
    enc = encode(p, Keys("t:"), "t:m", 30, 100)
    (n,) = [n for n in enc["notifications"] if n["nid"] == ll.nid]
    fields = dict(zip(n["fields"][::2], n["fields"][1::2], strict=True))
    assert n["channel"] == "landlord_sms" and fields["channel"] == "sms"
    assert (fields["phone"], fields["recipient"]) == (LANDLORD["phone"], "landlord")
    assert "+8613900139000" not in n["sms_limit"]["cycle_key"] + n["sms_limit"]["last_key"]
    assert landlord_key(LANDLORD["phone"]) in n["sms_limit"]["last_key"]
    assert json.loads(enc["nids"]) == p.nids


def test_routing_logs_the_landlord_sms_with_the_number_masked(caplog: pytest.LogCaptureFixture) -> None:
    from notifier import routing

    caplog.set_level(logging.INFO, logger=routing.log.name)

    class FakeStore:
        async def customers(self, ids: list[str]) -> dict[str, object]:
            return {i: rented() for i in ids}

        async def manager_profiles(self, ids: list[str]) -> dict[str, dict[str, str]]:
            return {}

        async def consent_overrides_many(self, pairs: list[tuple[str, str | None]]) -> list[list[None]]:
            return [[None, None] for _ in pairs]

        async def index_phones(self, pairs: dict[str, str]) -> None:
            assert LANDLORD["phone"] not in pairs  # a landlord's STOP or budget reply is not the tenant's

        def encode(self, plan: object, *a: object) -> dict[str, object]:
            return {}

        async def ingest(self, plans: list[object]) -> list[dict[str, object]]:
            return [{} for _ in plans]

    import asyncio

    asyncio.run(routing.ingest_alerts([drop()], FakeStore(), OFF, DAY))  # type: ignore[arg-type]
    assert "sms to the landlord +86*******9000 queued" in caplog.text
    assert "13900139000" not in caplog.text


@pytest.mark.parametrize(
    ("record", "settings", "rule"),
    [
        (customer(occupancy="owner", landlord=LANDLORD), OFF, "sustained_drop"),  # not rented
        (customer(occupancy="unknown", landlord=LANDLORD), OFF, "sustained_drop"),
        (customer(occupancy="rented"), OFF, "sustained_drop"),  # rented, no landlord on file
        (
            customer(occupancy="rented", landlord=LANDLORD),
            OFF.model_copy(update={"landlord_sms_rules": []}),
            "sustained_drop",
        ),
        (customer(occupancy="rented", landlord=LANDLORD), OFF, "sudden_increase"),  # not a listed rule
        (None, OFF, "sustained_drop"),
    ],
)
def test_no_landlord_sms_for_an_owner_no_landlord_an_empty_setting_or_another_rule(
    record: object, settings: Settings, rule: str
) -> None:
    a = drop() if rule == "sustained_drop" else alert(rule=rule)
    p = decide(a, record, True, {}, settings, DAY)  # type: ignore[arg-type]
    assert p.landlord_sms is None
    enc = encode(p, Keys("t:"), "t:m", 30, 100)
    assert all(n["channel"] != "landlord_sms" for n in enc["notifications"])
    if record is not None and getattr(record, "occupancy", "") != "rented":
        assert "landlord" not in p.inbox_item and "landlord" not in p.push.payload  # owner: no line


def test_the_setting_may_name_other_rules_and_the_text_then_says_use_changed() -> None:
    s = OFF.model_copy(update={"landlord_sms_rules": ["sudden_increase"]})
    p = decide(alert(rule="sudden_increase"), rented(), True, {}, s, DAY)
    assert p.landlord_sms is not None and p.landlord_sms.text is not None
    assert "变化" in p.landlord_sms.text.text and p.sms is not None  # the customer's own SMS unchanged
    assert p.sms.recipient == "customer" and "312" in p.sms.text.text  # type: ignore[union-attr]
    assert decide(drop(), rented(), True, {}, s, DAY).landlord_sms is None


def test_quiet_hours_defer_the_landlord_sms_and_a_stop_suppresses_it_reserving_nothing() -> None:
    night = Settings(quiet_hours_start=21, quiet_hours_end=8)
    p = decide(drop(), rented(), True, {}, night, NIGHT)
    ll = p.landlord_sms
    assert ll is not None and (ll.status, ll.reason) == ("deferred", "moderation.quiet_hours")
    assert ll.due == dt.datetime(2025, 1, 22, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    stopped = decide(drop(), rented(), True, {}, OFF, DAY, landlord_consent=False).landlord_sms
    assert stopped is not None and (stopped.status, stopped.reason, stopped.limit) == (
        "suppressed",
        "moderation.opted_out",
        None,
    )


_FIGURE = re.compile(r"kwh|度|元|¥|£|\$|yuan|%", re.IGNORECASE)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("profile", [PROFILE, {}])
def test_the_landlord_text_has_no_figure_of_the_tenant_s_use_or_bill(
    language: str, profile: dict[str, str]
) -> None:
    a = drop()
    a = a.model_copy(update={"money": None})
    p = decide(a, rented(language=language), True, profile, OFF, DAY)
    assert p.landlord_sms is not None and p.landlord_sms.text is not None
    text = p.landlord_sms.text.text
    assert p.landlord_sms.text.segments == 1, text
    assert not _FIGURE.search(text), text
    for figure in ("37", "8.6", "0.3", "0.4", "3.5", "王先生" if language == "en" else "$"):
        assert figure not in text, (figure, text)
    assert "c1" in text  # the account, so a landlord of several homes knows which one
    assert (PROFILE["phone"] if profile else "95598") in text
    since = "1月7日" if language == "zh-CN" else "7 Jan"  # triggered 21 Jan, a 14-day window
    assert since in text, text


def test_the_landlord_text_in_english() -> None:
    p = decide(drop(), rented(language="en"), True, PROFILE, OFF, DAY)
    assert p.landlord_sms is not None and p.landlord_sms.text is not None
    assert p.landlord_sms.text.text.startswith(
        "The home you rent out (account c1) has looked empty since 7 Jan"
    )
