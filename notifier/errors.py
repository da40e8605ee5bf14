"""The notifier's error answers: JSON ``{"detail": ...}``, bounded, never echoing the request back.

FastAPI's default 422 repeats the offending input (for a malformed 5 MB body: the
whole body, and more, as JSON). Here a validation error lists at most ``MAX_ERRORS``
entries of ``{loc, msg, type}`` with every part cut to a bounded length; the input
itself is never part of an answer.

>>> from fastapi.exceptions import RequestValidationError
>>> err = RequestValidationError([{"loc": ("body", "x" * 500), "msg": "bad", "type": "t", "input": "secret"}])
>>> detail = validation_detail(err)
>>> detail[0]["loc"][1][-3:], "input" in detail[0]
('...', False)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

log = logging.getLogger("meterwatch.notifier")

MAX_ERRORS = 20
MAX_PART = 120


def _cut(v: Any) -> Any:
    if isinstance(v, int):
        return v
    text = str(v)
    return text if len(text) <= MAX_PART else text[: MAX_PART - 3] + "..."


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = list(exc.errors())
    out: list[dict[str, Any]] = [
        {
            "loc": [_cut(p) for p in list(e.get("loc", ()))[:8]],
            "msg": _cut(e.get("msg", "invalid")),
            "type": _cut(e.get("type", "value_error")),
        }
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors", "type": "too_many_errors"})
    return out


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_detail(exc)}, status_code=422)


async def _on_redis_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis error: %s", type(exc).__name__)
    return JSONResponse({"detail": "storage unavailable, retry later"}, status_code=503)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(RedisError, _on_redis_error)
