"""Every error of the Ops API is a JSON body with a message.

``{"error": "<code>", "message": "<sentence>", "details": [...]}`` — ``details``
only for validation errors (one entry per offending parameter). Unknown
customers answer 404, malformed ids and queries 422, missing or bad tokens 401
(with ``WWW-Authenticate``), a role that may not use an endpoint 403, too many
requests 429 (with ``Retry-After``), an unreachable Redis 503. Nothing else
escapes as a bare 500: an unexpected exception becomes a JSON 500 and is logged.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from meterwatch.logs import mask_text

log = logging.getLogger("meterwatch.api")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The JSON body of every non-2xx answer."""

    error: str
    message: str
    details: list[ErrorDetail] | None = None


class ApiError(Exception):
    """Raise from a route or dependency to answer with a JSON error."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    details: list[ErrorDetail] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _validation_message(errors: list[ErrorDetail]) -> str:
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e.loc if p not in ("path", "query", "header"))
        parts.append(f"{where or 'request'}: {e.msg}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "invalid request: " + "; ".join(parts) + more


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    default = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else default
    if status == 404 and message == "Not Found":
        message = f"no such endpoint: {request.url.path[:100]}"
    return error_response(status, _CODES.get(status, "error"), message, exc.headers)


MAX_DETAILS = 20  # a validation error lists at most this many entries, each part cut to MAX_PART
MAX_PART = 120


def _cut(v: object) -> str:
    text = str(v)
    return text if len(text) <= MAX_PART else text[: MAX_PART - 3] + "..."


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with the offending parameters named; the input itself is never repeated back."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [
        ErrorDetail(
            loc=[p if isinstance(p, int) else _cut(p) for p in list(e.get("loc", ()))[:8]],
            msg=_cut(e.get("msg", "invalid")),
            type=_cut(e.get("type", "value_error")),
        )
        for e in errors[:MAX_DETAILS]
    ]
    message = _validation_message(details)
    if len(errors) > MAX_DETAILS:
        message += f" ({len(errors)} errors in all)"
    return error_response(422, "invalid_request", message, details=details)


async def _on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable on %s %s: %s", request.method, request.url.path[:100], exc)
    return error_response(
        503, "unavailable", "the read model (Redis) is unavailable; retry shortly", {"Retry-After": "1"}
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback is masked here (not via exc_info, which the log filter cannot reach):
    # a validation error of a stored customer record would otherwise print the phone.
    trace = "".join(traceback.format_exception(exc))
    log.error("unexpected error on %s %s\n%s", request.method, request.url.path[:100], mask_text(trace))
    return error_response(500, "internal", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(RedisError, _on_redis_error)
    app.add_exception_handler(Exception, _on_unexpected)


#: OpenAPI ``responses=`` entries for the error answers of authenticated routes.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing, malformed, unknown, expired or revoked token.",
        403: "The token's role may not use this endpoint.",
        404: "Unknown customer (or, for a manager, a customer of another manager).",
        422: "Malformed customer id or query parameter.",
        429: "Per-token rate limit exceeded; see Retry-After.",
        503: "Redis (the read model) unreachable.",
    }
    return {s: {"model": ErrorBody, "description": descriptions.get(s, "Error.")} for s in statuses}
