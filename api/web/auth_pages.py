"""Sign-in, sign-out, the language switch and the API docs (Swagger UI served from this host)."""

from __future__ import annotations

import hmac
import secrets
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import Caller, TokenAuth
from api.errors import ApiError
from api.web.common import read_form, redirect, render, require_caller, safe_next, user_key, user_lang
from api.web.i18n import LANGS
from api.web.session import (
    COOKIE,
    LANG_COOKIE,
    PRE_COOKIE,
    PRE_TTL_S,
    cookie_secure,
    csrf_ok,
    same_origin,
    session_caller,
    store_of,
)

router = APIRouter(include_in_schema=False)

#: the Swagger UI files served under /docs/assets (from the swagger-ui-py package)
SWAGGER_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}


def _set_cookie(
    resp: Response, request: Request, name: str, value: str, max_age: int, http_only: bool = True
) -> None:
    rt = request.app.state.runtime
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="strict",
        secure=cookie_secure(request, rt),
    )


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    if await session_caller(request) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return await _signin_page(request, None, 200)


async def _signin_page(request: Request, error: str | None, status: int) -> Response:
    lang = await user_lang(request, None)
    pre = secrets.token_urlsafe(24)
    resp = render(
        request,
        "signin.html",
        lang,
        None,
        status=status,
        pre=pre,
        error=error,
        next=safe_next(request.query_params.get("next")),
    )
    _set_cookie(resp, request, PRE_COOKIE, pre, PRE_TTL_S)
    return resp


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await read_form(request)
    pre = request.cookies.get(PRE_COOKIE, "")
    sent = form.get("pre", "")
    if not (pre and sent and hmac.compare_digest(pre, sent) and same_origin(request)):
        return await _signin_page(request, "signin.csrf", 403)
    created = await store_of(request).create(form.get("token", "").strip())
    if created is None:
        return await _signin_page(request, "signin.bad", 401)
    cookie, sess = created
    resp = redirect(safe_next(form.get("next")))
    _set_cookie(
        resp, request, COOKIE, cookie, max(1, int((sess.expires_at - sess.created_at).total_seconds()))
    )
    resp.delete_cookie(PRE_COOKIE, path="/")
    return resp


@router.post("/signout")
async def signout(request: Request) -> Response:
    caller = await require_caller(request)
    form = await read_form(request)
    if not csrf_ok(request, form.get("csrf"), caller.session.csrf):
        raise ApiError(403, "forbidden", "missing or wrong CSRF token (reload the page)")
    await store_of(request).end(request.cookies.get(COOKIE))
    resp = redirect("/signin")
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.post("/lang")
async def set_lang(request: Request) -> Response:
    form = await read_form(request)
    lang = form.get("lang", "")
    if lang not in LANGS:
        raise ApiError(422, "invalid_request", "lang must be en or zh-CN")
    caller = await session_caller(request)
    if caller is not None:
        if not csrf_ok(request, form.get("csrf"), caller.session.csrf):
            raise ApiError(403, "forbidden", "missing or wrong CSRF token (reload the page)")
        await caller.rt.redis.hset(caller.rt.keys.web_preferences(user_key(caller)), "lang", lang)
    elif not same_origin(request):
        raise ApiError(403, "forbidden", "cross-origin request")
    resp = redirect(safe_next(form.get("next")))
    _set_cookie(resp, request, LANG_COOKIE, lang, 365 * 86400)
    return resp


async def any_caller(request: Request) -> Caller:
    """A bearer token or a browser session (401 otherwise)."""
    if request.headers.get("authorization"):
        return await TokenAuth()(request)
    caller = await session_caller(request)
    if caller is None:
        raise ApiError(
            401,
            "unauthorized",
            "sign in at /signin or send a bearer token",
            {"WWW-Authenticate": 'Bearer realm="meterwatch"'},
        )
    return caller


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    await any_caller(request)
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs")
async def docs(request: Request) -> Response:
    if not request.headers.get("authorization") and await session_caller(request) is None:
        return redirect("/signin?next=/docs")
    caller = await any_caller(request)
    lang = await user_lang(request, None)
    return render(request, "docs.html", lang, None, signed_in=caller is not None)


@router.get("/docs/assets/{name}")
async def docs_asset(request: Request, name: str) -> Response:
    await any_caller(request)
    ctype = SWAGGER_ASSETS.get(name)
    if ctype is None:
        raise ApiError(404, "not_found", "no such asset")
    data = (files("swagger_ui") / "static" / name).read_bytes()
    return Response(data, media_type=ctype, headers={"Cache-Control": "private, max-age=86400"})
