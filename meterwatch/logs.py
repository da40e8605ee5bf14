"""Logging helpers: one format, and phone numbers never in clear.

>>> mask_phone("+8613812345678")
'+86*******5678'
>>> mask_phone(None)
'-'
>>> mask_text("call +447700900123 now")
'call +44******0123 now'
"""

from __future__ import annotations

import logging
import re

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


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
