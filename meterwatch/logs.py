"""Logging helpers: one format, phone numbers never in clear, repeated records rate-limited.

>>> mask_phone("+8613812345678")
'+86*******5678'
>>> mask_phone(None)
'-'
>>> mask_text("call +447700900123 now")
'call +44******0123 now'

An outage must not flood the logs: ``RepeatFilter`` lets one record per cause through
per interval and appends how many it held back (a cause is the logger, the level, the
message template and the exception type; the arguments may differ):

>>> t = [0.0]
>>> f = RepeatFilter(interval_s=30.0, clock=lambda: t[0])
>>> def rec(n):
...     return logging.LogRecord("aiokafka", logging.ERROR, "x", 1, "Unable connect to node %s", (n,), None)
>>> [f.filter(rec(i)) for i in range(3)]
[True, False, False]
>>> t[0] = 31.0
>>> r = rec(9); f.filter(r), r.getMessage()
(True, 'Unable connect to node 9 [2 similar suppressed in the last 31s]')
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")


def mask_phone(phone: str | None) -> str:
    if not phone:
        return "-"
    keep_head = 3 if len(phone) > 8 else 1
    return phone[:keep_head] + "*" * max(len(phone) - keep_head - 4, 0) + phone[-4:]


def mask_text(text: str) -> str:
    """Mask every E.164 number inside a free text."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks phone numbers in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True


class RepeatFilter(logging.Filter):
    """One record per cause per ``interval_s``; the next one that passes says how many were held back.

    Records below ``min_level`` (default WARNING) always pass, so per-event INFO lines
    ("sms … sent") are never thinned. ``interval_s <= 0`` turns the filter off.
    At most ``max_causes`` causes are remembered (the oldest are forgotten first).
    """

    def __init__(
        self,
        interval_s: float = 30.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_causes: int = 1024,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.min_level = min_level
        self.clock = clock
        self.max_causes = max_causes
        self._seen: dict[tuple[str, int, str, str], list[float]] = {}  # cause -> [passed_at, held back]
        self._lock = threading.Lock()

    @staticmethod
    def cause(record: logging.LogRecord) -> tuple[str, int, str, str]:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        return record.name, record.levelno, str(record.msg)[:300], exc

    def filter(self, record: logging.LogRecord) -> bool:
        if self.interval_s <= 0 or record.levelno < self.min_level:
            return True
        key = self.cause(record)
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval_s:
                seen[1] += 1
                return False
            held, since = (int(seen[1]), now - seen[0]) if seen is not None else (0, 0.0)
            self._seen.pop(key, None)
            self._seen[key] = [now, 0]
            if len(self._seen) > self.max_causes:
                del self._seen[next(iter(self._seen))]
        if held:
            record.msg = f"{record.getMessage()} [{held} similar suppressed in the last {since:.0f}s]"
            record.args = ()  # a tuple: formatters that wrap non-tuple args (mode's) stay happy
        return True


def install_repeat_filter(interval_s: float = 30.0, logger: logging.Logger | None = None) -> RepeatFilter:
    """Add one ``RepeatFilter`` to every handler of ``logger`` (default: the root logger).

    For processes whose logging is set up by someone else (the Faust worker): call it after
    their set-up, e.g. ``install_repeat_filter(settings.log_repeat_interval_s)``.
    """
    target = logger or logging.getLogger()
    flt = RepeatFilter(interval_s)
    for handler in target.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt


def setup_logging(level: str = "INFO", repeat_interval_s: float | None = None) -> None:
    """One stderr handler: masked phones, repeated warnings and errors rate-limited.

    ``repeat_interval_s`` defaults to ``MW_LOG_REPEAT_INTERVAL_S``.
    """
    if repeat_interval_s is None:
        from meterwatch.settings import get_settings

        repeat_interval_s = get_settings().log_repeat_interval_s
    handler = logging.StreamHandler()
    handler.addFilter(RepeatFilter(repeat_interval_s))
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
