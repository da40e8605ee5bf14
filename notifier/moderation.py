"""The moderation policy as pure functions (the atomic part lives in store.py's Lua).

Quiet hours are local to the customer; a message inside them is deferred to
the end of the quiet hours, never dropped.

>>> import datetime as dt
>>> now = dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai
>>> in_quiet_hours(now, "Asia/Shanghai", 21, 8)
True
>>> quiet_hours_end(now, "Asia/Shanghai", 21, 8).isoformat()
'2024-03-02T00:00:00+00:00'
>>> in_quiet_hours(now, "Europe/London", 21, 8)
False
>>> parse_keyword("  td ")
'opt_out'
>>> parse_keyword("退订")
'opt_out'
>>> parse_keyword("START")
'opt_in'
>>> parse_keyword("thanks!") is None
True
>>> [backoff_s(n, 0.5, 30.0, jitter=1.0) for n in (1, 4, 20)]
[0.5, 4.0, 30.0]
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterwatch.contracts import SegmentRef
from meterwatch.settings import SegmentPolicy, Settings

#: Inbound keywords (case-insensitive, surrounding spaces and punctuation ignored).
OPT_OUT_KEYWORDS = frozenset({"STOP", "TD", "T", "UNSUBSCRIBE", "退订", "取消", "退订短信"})
OPT_IN_KEYWORDS = frozenset({"START", "KT", "SUBSCRIBE", "订阅", "开通"})


def zone(name: str) -> ZoneInfo:
    """The customer's zone; an unknown name falls back to Asia/Shanghai."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def in_quiet_hours(now: dt.datetime, tz: str, start: int, end: int) -> bool:
    """Whether ``now`` falls in the quiet hours [start, end) local to ``tz``."""
    if start == end:
        return False
    h = now.astimezone(zone(tz)).hour
    return (h >= start or h < end) if start > end else (start <= h < end)


def quiet_hours_end(now: dt.datetime, tz: str, start: int, end: int) -> dt.datetime:
    """The next moment quiet hours end (local ``end``:00), as UTC."""
    z = zone(tz)
    local = now.astimezone(z)
    target = dt.datetime(local.year, local.month, local.day, end, tzinfo=z)
    if target <= local:
        nd = local.date() + dt.timedelta(days=1)
        target = dt.datetime(nd.year, nd.month, nd.day, end, tzinfo=z)
    return target.astimezone(dt.UTC)


def next_allowed(now: dt.datetime, tz: str, start: int, end: int) -> dt.datetime:
    """``now`` if outside quiet hours, else the end of the quiet hours."""
    return quiet_hours_end(now, tz, start, end) if in_quiet_hours(now, tz, start, end) else now


def parse_keyword(text: str) -> Literal["opt_out", "opt_in"] | None:
    """The consent action of an inbound SMS text, if it is one of the keywords."""
    t = unicodedata.normalize("NFKC", text).strip().strip(".!。！ ").upper()
    if t in OPT_OUT_KEYWORDS:
        return "opt_out"
    if t in OPT_IN_KEYWORDS:
        return "opt_in"
    return None


def backoff_s(attempt: int, base: float, cap: float, jitter: float | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with jitter.

    ``jitter`` in [0.5, 1] scales the delay ("equal jitter"); random when None.
    """
    raw = min(cap, base * (2 ** max(attempt - 1, 0)))
    j: float = random.uniform(0.5, 1.0) if jitter is None else jitter  # noqa: S311 - not crypto
    return float(raw * j)


def policy_for(segment: SegmentRef, settings: Settings) -> tuple[str, SegmentPolicy]:
    """The policy of a segment: by kind, then label (case-insensitive), then id, then "*", else default.

    The segmenter sets ``kind`` (ordinary, premium, potential, sensitive, risk) from what
    characterises the segment, so the default policies apply to learned segments too.

    >>> from meterwatch.settings import Settings
    >>> name, p = policy_for(SegmentRef(id=2, label="Premium"), Settings())
    >>> name, p.sms_delay_minutes, p.digest
    ('premium', 60, False)
    >>> policy_for(SegmentRef(id=5, label="ordinary"), Settings())[0]
    'default'
    >>> policy_for(SegmentRef(id=3, label="steady, high use", kind="sensitive"), Settings())[0]
    'sensitive'
    """
    pols = {k.lower(): v for k, v in settings.notifier_segment_policies.items()}
    if segment.kind and segment.kind.lower() in pols:
        return segment.kind.lower(), pols[segment.kind.lower()]
    if segment.label and segment.label.lower() in pols:
        return segment.label.lower(), pols[segment.label.lower()]
    if segment.id is not None and str(segment.id) in pols:
        return str(segment.id), pols[str(segment.id)]
    if "*" in pols:
        return "*", pols["*"]
    return "default", SegmentPolicy()


def effective_consent(registry_opt_in: bool, overrides: list[str | None]) -> tuple[bool, float | None]:
    """Consent from the registry flag and overrides ``"in:<epoch>"`` / ``"out:<epoch>"``: newest wins.

    >>> effective_consent(True, [None, None])
    (True, None)
    >>> effective_consent(True, ["out:100", "in:50"])
    (False, 100.0)
    >>> effective_consent(False, ["out:100", "in:150"])
    (True, 150.0)
    """
    best: tuple[float, bool] | None = None
    for o in overrides:
        if not o:
            continue
        state, _, ts = o.partition(":")
        try:
            t = float(ts)
        except ValueError:
            continue
        if best is None or t >= best[0]:
            best = (t, state == "in")
    if best is None:
        return registry_opt_in, None
    return best[1], best[0]
