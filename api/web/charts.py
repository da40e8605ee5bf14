"""Charts as inline SVG, rendered on the server (no chart library, no script, no inline style).

Every shape carries a class (styled by ``static/app.css``); text is escaped.
Each daily point is a ``<circle class="pt" data-day=...>`` (with a ``<title>``
tooltip), the baseline band a ``<path class="band">``.

>>> import datetime as dt
>>> svg = daily_chart([(dt.date(2025, 3, 1), 5.0, 4.0, 2.0, 8.0, 4.5)], "en")
>>> svg.count('class="pt'), svg.count('class="band"')
(1, 1)
>>> nice_max(7.3), nice_max(0.0), nice_max(1234.0)
(8.0, 1.0, 1500.0)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from api.web.i18n import t

W, H = 720, 240  # the daily chart; the half-width charts are SMALL_W wide (same text size on screen)
SMALL_W = 480
L, R, T, B = 48, 16, 24, 30

#: (day, kwh, expected, band_low, band_high, last_year_kwh)
DailyRow = tuple[dt.date, float | None, float | None, float | None, float | None, float | None]


def nice_max(v: float) -> float:
    """A round axis maximum at or above ``v``."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= step * mag:
            return float(step * mag)
    return float(10 * mag)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v < 100 else f"{v:.0f}"


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Contiguous runs of defined values."""
    runs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for x, y in points:
        if y is None:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append((x, y))
    if cur:
        runs.append(cur)
    return runs


def _poly(cls: str, run: list[tuple[float, float]]) -> str:
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
    return f'<polyline class="{cls}" points="{pts}"/>'


class _Frame:
    def __init__(self, n: int, ymax: float, width: int = W) -> None:
        self.n = max(n, 1)
        self.ymax = ymax
        self.w = width

    def x(self, i: float) -> float:
        if self.n == 1:
            return L + (self.w - L - R) / 2
        return L + i * (self.w - L - R) / (self.n - 1)

    def y(self, v: float) -> float:
        return T + (H - T - B) * (1 - v / self.ymax)

    def axes(self, labels: list[tuple[float, str]], unit: str) -> list[str]:
        w = self.w
        out = [f'<line class="axis" x1="{L}" y1="{H - B}" x2="{w - R}" y2="{H - B}"/>']
        for frac in (0.0, 0.5, 1.0):
            v = self.ymax * frac
            y = self.y(v)
            out.append(f'<line class="grid" x1="{L}" y1="{y:.1f}" x2="{w - R}" y2="{y:.1f}"/>')
            out.append(f'<text class="tick" x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
        out.append(f'<text class="tick" x="{L - 6}" y="{T - 12}" text-anchor="end">{escape(unit)}</text>')
        for i, text in labels:
            anchor = "start" if i == 0 else ("end" if i == self.n - 1 else "middle")
            out.append(
                f'<text class="tick" x="{self.x(i):.1f}" y="{H - B + 18}" '
                f'text-anchor="{anchor}">{escape(text)}</text>'
            )
        return out


def _svg(title: str, desc: str, body: list[str], cls: str, width: int = W) -> Markup:
    head = (
        f'<svg class="chart {cls}" viewBox="0 0 {width} {H}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    )
    # every text in ``body`` went through ``escape``; the rest is numbers and fixed markup
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704


def _date_labels(days: Sequence[dt.date]) -> list[tuple[float, str]]:
    if not days:
        return []
    idx = sorted({0, len(days) // 2, len(days) - 1})
    return [(i, days[i].strftime("%m-%d")) for i in idx]


def daily_chart(rows: Sequence[DailyRow], lang: str) -> Markup:
    """Daily kWh against the baseline band and last year's same days."""
    title, desc = t(lang, "chart.daily"), t(lang, "chart.daily_desc")
    vals = [v for r in rows for v in (r[1], r[4], r[5]) if v is not None]
    if not rows or not vals:
        return _svg(
            title,
            desc,
            [f'<text class="empty" x="{W / 2}" y="{H / 2}">{escape(t(lang, "chart.no_data"))}</text>'],
            "daily",
        )
    f = _Frame(len(rows), nice_max(max(vals)))
    body = f.axes(_date_labels([r[0] for r in rows]), "kWh")
    band_runs = _runs([(i, None if r[3] is None or r[4] is None else 1.0) for i, r in enumerate(rows)])
    for run in band_runs:
        ids = [int(x) for x, _ in run]
        top = [(f.x(i), f.y(rows[i][4] or 0.0)) for i in ids]
        bot = [(f.x(i), f.y(rows[i][3] or 0.0)) for i in reversed(ids)]
        if len(ids) == 1:  # a one-day band: a narrow box
            x = top[0][0]
            top = [(x - 2, top[0][1]), (x + 2, top[0][1])]
            bot = [(x + 2, bot[0][1]), (x - 2, bot[0][1])]
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in top + bot) + " Z"
        body.append(f'<path class="band" d="{d}"/>')
    for run in _runs([(f.x(i), None if r[2] is None else f.y(r[2])) for i, r in enumerate(rows)]):
        body.append(_poly("exp", run))
    for run in _runs([(f.x(i), None if r[5] is None else f.y(r[5])) for i, r in enumerate(rows)]):
        body.append(_poly("ly", run))
    for run in _runs([(f.x(i), None if r[1] is None else f.y(r[1])) for i, r in enumerate(rows)]):
        body.append(_poly("kwh", run))
    for i, r in enumerate(rows):
        if r[1] is None:
            continue
        out = r[4] is not None and r[3] is not None and not (r[3] <= r[1] <= r[4])
        tip = f"{r[0].isoformat()}: {_fmt(r[1])} kWh"
        if r[2] is not None:
            tip += f" ({_fmt(r[3] or 0.0)}-{_fmt(r[4] or 0.0)})"
        body.append(
            f'<circle class="pt{" out" if out else ""}" data-day="{r[0].isoformat()}" cx="{f.x(i):.1f}" '
            f'cy="{f.y(r[1]):.1f}" r="2.6"><title>{escape(tip)}</title></circle>'
        )
    return _svg(title, desc, body, "daily")


def cumulative_chart(
    cycle_days: Sequence[dt.date],
    this_cycle: Sequence[float | None],
    same_period: Sequence[float | None],
    projected_total: float | None,
    lang: str,
) -> Markup:
    """Cycle-to-date cumulative kWh, the projection to cycle end, and the same-period cycle."""
    title, desc = t(lang, "chart.cumulative"), t(lang, "chart.cumulative_desc")
    cum_now = _cumulative(this_cycle)
    cum_sp = _cumulative(same_period)
    vals = [v for v in cum_now + cum_sp if v is not None] + ([projected_total] if projected_total else [])
    if not cycle_days or not vals:
        return _svg(
            title,
            desc,
            [f'<text class="empty" x="{SMALL_W / 2}" y="{H / 2}">{escape(t(lang, "chart.no_data"))}</text>'],
            "cumulative",
            SMALL_W,
        )
    f = _Frame(len(cycle_days), nice_max(max(vals)), SMALL_W)
    body = f.axes(_date_labels(list(cycle_days)), "kWh")
    for run in _runs([(f.x(i), None if v is None else f.y(v)) for i, v in enumerate(cum_sp)]):
        body.append(_poly("ly", run))
    last = max((i for i, v in enumerate(cum_now) if v is not None), default=None)
    for run in _runs([(f.x(i), None if v is None else f.y(v)) for i, v in enumerate(cum_now)]):
        body.append(_poly("kwh", run))
    if last is not None and projected_total is not None:
        now_v = cum_now[last] or 0.0
        body.append(
            f'<line class="proj" x1="{f.x(last):.1f}" y1="{f.y(now_v):.1f}" '
            f'x2="{f.x(len(cycle_days) - 1):.1f}" y2="{f.y(projected_total):.1f}"/>'
        )
        body.append(
            f'<circle class="projpt" cx="{f.x(len(cycle_days) - 1):.1f}" '
            f'cy="{f.y(projected_total):.1f}" r="3">'
            f"<title>{escape(t(lang, 'legend.projection'))}: {_fmt(projected_total)} kWh</title></circle>"
        )
    return _svg(title, desc, body, "cumulative", SMALL_W)


def _cumulative(values: Sequence[float | None]) -> list[float | None]:
    """Running sums; a missing day keeps the sum, None before the first and after the last known day.

    >>> _cumulative([None, 1.0, None, 2.0, None])
    [None, 1.0, 1.0, 3.0, None]
    """
    out: list[float | None] = []
    total: float | None = None
    for v in values:
        if v is not None:
            total = (total or 0.0) + v
        out.append(total)
    last = max((i for i, v in enumerate(values) if v is not None), default=-1)
    return [v if i <= last else None for i, v in enumerate(out)]


def cycles_chart(cycles: Sequence[tuple[dt.date, dt.date, float, float]], lang: str) -> Markup:
    """Closed billing cycles as bars (kWh); cycles with less than 80 % coverage are marked partial."""
    title = t(lang, "chart.cycles")
    if not cycles:
        return _svg(
            title,
            "",
            [f'<text class="empty" x="{SMALL_W / 2}" y="{H / 2}">{escape(t(lang, "chart.no_data"))}</text>'],
            "cycles",
            SMALL_W,
        )
    f = _Frame(len(cycles), nice_max(max(c[2] for c in cycles)), SMALL_W)
    slot = (SMALL_W - L - R) / len(cycles)
    labels = [(i, cycles[i][0].strftime("%Y-%m")) for i in sorted({0, len(cycles) // 2, len(cycles) - 1})]
    body = f.axes([], "kWh")
    for i, (start, end, kwh, cov) in enumerate(cycles):
        x = L + i * slot + slot * 0.15
        y = f.y(kwh)
        cls = "bar" if cov >= 0.8 else "bar partial"
        tip = f"{start.isoformat()} - {end.isoformat()}: {_fmt(kwh)} kWh"
        body.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{H - B - y:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    for i, text in labels:
        body.append(
            f'<text class="tick" x="{L + (i + 0.5) * slot:.1f}" y="{H - B + 18}" '
            f'text-anchor="middle">{escape(text)}</text>'
        )
    return _svg(title, "", body, "cycles", SMALL_W)
