"""Workbench pieces without Redis: charts, callback timer, ranking keys, cookies."""

from __future__ import annotations

import datetime as dt

from api.web.charts import cumulative_chart, cycles_chart, daily_chart
from api.web.session import sign, unsign
from api.web.views import row_of
from api.workbench.alerts import AlertItem, rank_key

NOW = dt.datetime(2025, 3, 2, 12, 0, tzinfo=dt.UTC)


def _doc(**kw: object) -> dict[str, object]:
    d: dict[str, object] = {
        "alert_id": "a1", "customer_id": "c1", "rule": "sudden_increase", "severity": "warning",
        "created_at": "2025-03-01T08:00:00+00:00", "triggered_by": "2025-03-01T08:00:00+00:00",
        "observed": {"ratio": 3.0}, "explanation": {"en": "Use tripled.", "zh-CN": "用电量翻了三倍。"},
    }  # fmt: skip
    d.update(kw)
    return d


def test_the_callback_timer_runs_24_hours_from_creation_and_stops_when_resolved() -> None:
    fresh = row_of(AlertItem(_doc(created_at="2025-03-02T02:00:00+00:00"), "open", {}), "", "en", NOW)
    assert (fresh.callback, fresh.overdue) == ("14 h left", False)
    late = row_of(AlertItem(_doc(), "acknowledged", {}), "", "en", NOW)
    assert (late.callback, late.overdue, late.age) == ("overdue by 4 h", True, "28 h")
    done = row_of(AlertItem(_doc(), "resolved", {}), "", "zh-CN", NOW)
    assert (done.callback, done.overdue, done.explanation) == ("已完成", False, "用电量翻了三倍。")


def test_ranking_keys_order_severity_then_money_then_ratio_then_newest() -> None:
    docs = [
        _doc(alert_id="info", severity="info", observed={"ratio": 9.0}),
        _doc(alert_id="ratio5", observed={"ratio": 5.0}),
        _doc(alert_id="money10", money={"extra_vs_same_period": 10.0}, observed={"ratio": 1.1}),
        _doc(alert_id="money90", money={"extra_vs_same_period": 90.0}, observed={"ratio": 1.1}),
        _doc(alert_id="crit", severity="critical", observed={"ratio": 1.0}),
        _doc(alert_id="ratio5-newer", observed={"ratio": 5.0}, triggered_by="2025-03-02T08:00:00+00:00"),
    ]
    got = [d["alert_id"] for d in sorted(docs, key=rank_key)]
    assert got == ["crit", "money90", "money10", "ratio5-newer", "ratio5", "info"]


def test_charts_escape_text_and_draw_one_point_per_known_day() -> None:
    rows = [
        (dt.date(2025, 3, 1) + dt.timedelta(days=i), None if i == 3 else 5.0 + i, 5.0, 2.0, 8.0, 4.0)
        for i in range(10)
    ]
    svg = str(daily_chart(rows, "en"))
    assert svg.count('<circle class="pt') == 9
    assert svg.count('class="pt out"') == 6  # 9 to 14 kWh lie above the band's 8
    assert "<script" not in svg
    cyc = str(cycles_chart([(dt.date(2025, 1, 1), dt.date(2025, 1, 31), 250.0, 0.5)], "en"))
    assert 'class="bar partial"' in cyc
    cum = str(
        cumulative_chart([dt.date(2025, 3, 1), dt.date(2025, 3, 2)], [1.0, None], [2.0, 2.0], 5.0, "en")
    )
    assert 'class="proj"' in cum
    empty = str(daily_chart([], "zh-CN"))
    assert "暂无数据" in empty


def test_a_cookie_value_is_bound_to_its_secret_and_expiry() -> None:
    value = sign(b"s3cret", "sid", 1000)
    assert unsign(b"s3cret", value, now=999) == "sid"
    assert unsign(b"s3cret", value, now=1001) is None
    assert unsign(b"s3cret", value.replace(".1000.", ".9999."), now=999) is None  # expiry is signed
    assert unsign(b"s3cret", "a.b", now=0) is None
