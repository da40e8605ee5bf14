"""SMS texts (one segment, the numbers, whom to call) and the pure moderation rules."""

from __future__ import annotations

import datetime as dt

import pytest

from meterwatch.contracts import SegmentRef
from meterwatch.settings import SegmentPolicy, Settings
from notifier.channels import render_body
from notifier.moderation import (
    backoff_s,
    effective_consent,
    in_quiet_hours,
    next_allowed,
    parse_keyword,
    policy_for,
    quiet_hours_end,
)
from notifier.templates import Contact, render_sms, sms_segments

from .conftest import make_alert

UTC = dt.UTC
RULES = [
    "same_period_reached",
    "projected_over_same_period",
    "sudden_increase",
    "sustained_drop",
    "other_rule",
]
MGR = Contact(manager_name="李娜", manager_phone="13812345678", hotline="95598")
MGR_EN = Contact(manager_name="Sam Patel", manager_phone="+447700900456", hotline="0800 000 000")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("ctd,same", [(312.4, 298.0), (1843.7, 1760.2), (48.25, 9.5), (7.25, 6.9)])
def test_chinese_sms_fits_one_segment_with_the_numbers_and_manager(
    rule: str, ctd: float, same: float
) -> None:
    a = make_alert("c1", rule=rule, ctd=ctd, same=same)
    sms = render_sms(a, "zh-CN", "张伟", MGR)
    assert sms.encoding == "ucs2" and sms.segments == 1 and sms.units <= 70, sms
    assert f"{ctd:.0f}" in sms.text if ctd >= 10 else f"{ctd:.1f}" in sms.text
    assert "13812345678" in sms.text
    if rule in ("same_period_reached", "projected_over_same_period", "other_rule"):
        assert (f"{same:.0f}" if same >= 10 else f"{same:.1f}") in sms.text


@pytest.mark.parametrize("rule", RULES)
def test_english_sms_fits_one_gsm_segment(rule: str) -> None:
    a = make_alert("c1", rule=rule, ctd=1843.7, same=1760.2)
    sms = render_sms(a, "en", "Alexandra Montgomery-Smith", MGR_EN)
    assert sms.encoding == "gsm7" and sms.segments == 1 and sms.units <= 160, sms
    assert "1844" in sms.text and "+447700900456" in sms.text


def test_richest_variant_when_it_fits_and_hotline_without_a_manager() -> None:
    a = make_alert("c1", ctd=312.4, same=298.0)
    short = render_sms(a, "zh-CN", "王芳", MGR)
    assert short.variant == 0 and short.text.startswith("王芳您好") and "李娜" in short.text
    none = render_sms(a, "zh-CN", "王芳", Contact("", "", "95598"))
    assert "95598" in none.text and none.segments == 1
    # a signature takes room: a shorter variant is chosen, still one segment
    signed = render_sms(a, "zh-CN", "欧阳娜娜", MGR, signature="【某某省某某市供电公司】")
    assert signed.text.startswith("【某某省某某市供电公司】") and signed.segments == 1 and signed.variant > 0


def test_segment_counting_edges() -> None:
    assert sms_segments("a" * 160) == ("gsm7", 160, 1)
    assert sms_segments("a" * 161) == ("gsm7", 161, 2)
    assert sms_segments("€" * 80) == ("gsm7", 160, 1)  # extension chars count twice
    assert sms_segments("中" * 70) == ("ucs2", 70, 1)
    assert sms_segments("中" * 71) == ("ucs2", 71, 2)
    assert sms_segments("a" * 159 + "中")[0] == "ucs2"  # one Chinese char makes it all UCS-2


def test_gateway_body_template_escapes_values() -> None:
    body, ctype = render_body(
        '{"to":"{phone}","msg":"{text}","ref":"{notification_id}"}', "+1555", 'a"b\\c\n', "n_1"
    )
    import json

    assert ctype == "application/json" and json.loads(body)["msg"] == 'a"b\\c\n'
    with pytest.raises(ValueError):
        render_body('{"to": {phone}}', "x", "y", "z")  # the template itself must stay JSON


def test_quiet_hours_in_the_customers_timezone_across_dst() -> None:
    # London switches to BST on 2025-03-30: quiet hours end at 08:00 local either way
    t = dt.datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert in_quiet_hours(t, "Europe/London", 21, 8)
    assert quiet_hours_end(t, "Europe/London", 21, 8) == dt.datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    # just before 08:00 local in Shanghai, and just after
    assert in_quiet_hours(dt.datetime(2025, 1, 1, 23, 59, tzinfo=UTC), "Asia/Shanghai", 21, 8)
    assert not in_quiet_hours(dt.datetime(2025, 1, 2, 0, 0, tzinfo=UTC), "Asia/Shanghai", 21, 8)
    # a daytime window (start < end) and "no quiet hours" (start == end)
    assert in_quiet_hours(dt.datetime(2025, 1, 1, 13, tzinfo=UTC), "UTC", 12, 14)
    assert not in_quiet_hours(dt.datetime(2025, 1, 1, 3, tzinfo=UTC), "UTC", 0, 0)
    noon = dt.datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert next_allowed(noon, "UTC", 21, 8) == noon
    # an unknown zone falls back to Asia/Shanghai instead of crashing
    assert in_quiet_hours(dt.datetime(2025, 1, 1, 15, tzinfo=UTC), "Mars/Olympus", 21, 8)


def test_every_hour_of_the_day_is_deferred_to_the_end_of_quiet_hours_or_sent() -> None:
    for h in range(24):
        t = dt.datetime(2025, 6, 1, h, 17, tzinfo=UTC)
        nxt = next_allowed(t, "Asia/Shanghai", 21, 8)
        local = nxt.astimezone(dt.timezone(dt.timedelta(hours=8)))
        assert nxt >= t and nxt - t < dt.timedelta(hours=11)
        assert nxt == t or (local.hour, local.minute) == (8, 0)


def test_keywords() -> None:
    for t in ("STOP", "stop", " Stop. ", "TD", "td", "退订", "ＴＤ", "UNSUBSCRIBE"):
        assert parse_keyword(t) == "opt_out", t
    for t in ("START", "kt", "订阅", "subscribe!"):
        assert parse_keyword(t) == "opt_in", t
    for t in ("", "why is my bill high", "STOPP", "退订了吗"):
        assert parse_keyword(t) is None, t


def test_backoff_grows_is_capped_and_jittered() -> None:
    xs = [backoff_s(n, 0.5, 30.0) for n in range(1, 12)]
    for n, x in enumerate(xs, start=1):
        raw = min(30.0, 0.5 * 2 ** (n - 1))
        assert raw * 0.5 <= x <= raw
    assert len({round(backoff_s(3, 0.5, 30.0), 6) for _ in range(20)}) > 1  # jitter


def test_policy_lookup_by_label_id_and_default() -> None:
    s = Settings(
        notifier_segment_policies={"3": SegmentPolicy(sms="never"), "*": SegmentPolicy(sms_delay_minutes=5)}
    )
    assert policy_for(SegmentRef(id=3, label="risk"), s)[1].sms == "never"
    assert policy_for(SegmentRef(id=1, label="x"), s) == ("*", SegmentPolicy(sms_delay_minutes=5))
    assert policy_for(SegmentRef(), Settings())[0] == "default"


def test_consent_newest_wins() -> None:
    assert effective_consent(False, [None, None]) == (False, None)
    assert effective_consent(True, ["out:10", None])[0] is False
    assert effective_consent(True, ["out:10", "in:20"])[0] is True
    assert effective_consent(True, ["garbage", "out:5"]) == (False, 5.0)
