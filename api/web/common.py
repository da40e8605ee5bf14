"""What every workbench page needs: templates, the signed-in caller, forms, redirects, headers."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from api.errors import ApiError
from api.web.i18n import LANGS, pick_lang, t
from api.web.session import LANG_COOKIE, WebCaller, session_caller

FORM_MAX_BYTES = 16 * 1024

#: Content-Security-Policy of every answer: no inline script or style, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}

_env = Environment(
    loader=PackageLoader("api.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """Raised by a page for an anonymous browser: answered with a redirect to /signin."""


class PageNotFound(Exception):
    """A page for something that does not exist or is not the caller's (one answer for both)."""


async def require_caller(request: Request) -> WebCaller:
    caller = await session_caller(request)
    if caller is None:
        raise SignInRequired
    return caller


async def user_lang(request: Request, caller: WebCaller | None) -> str:
    """The user's language: their saved preference, else the cookie, else the browser's."""
    if caller is not None:
        pref = await caller.rt.redis.hget(caller.rt.keys.web_preferences(user_key(caller)), "lang")
        if pref is not None:
            lang = pref.decode() if isinstance(pref, bytes) else str(pref)
            if lang in LANGS:
                return lang
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return str(cookie)
    return pick_lang(request.headers.get("accept-language"))


def user_key(caller: WebCaller) -> str:
    """Whose preferences: a manager, or one ops token."""
    tok = caller.token
    return f"m:{tok.manager_id}" if tok.role == "manager" and tok.manager_id else f"t:{tok.token_id}"


def render(
    request: Request, name: str, lang: str, caller: WebCaller | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    tpl = _env.get_template(name)

    def tr(key: str, **kw: object) -> str:
        return t(lang, key, **kw)

    html = tpl.render(
        t=tr,
        lang=lang,
        caller=caller,
        csrf=caller.session.csrf if caller is not None else "",
        path=request.url.path,
        now=dt.datetime.now(dt.UTC),
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (at most 16 KB; 413/415 otherwise); one value per field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "expected a form (application/x-www-form-urlencoded)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > FORM_MAX_BYTES):
        raise ApiError(413, "too_large", f"form larger than {FORM_MAX_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise ApiError(413, "too_large", f"form larger than {FORM_MAX_BYTES} bytes")
    try:
        parsed = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=30, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", "unreadable form") from None
    return {k: v[0] for k, v in parsed.items()}


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site).

    >>> safe_next("/customers/c1"), safe_next("//evil.example/x"), safe_next("https://x"), safe_next(None)
    ('/customers/c1', '/', '/', '/')
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return default
    return value


def redirect(to: str) -> Response:
    return RedirectResponse(to, status_code=303, headers={"Cache-Control": "no-store"})


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")
