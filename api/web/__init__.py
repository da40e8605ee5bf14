"""The account manager's workbench, served by the Ops API under ``/`` (docs/workbench.md).

:func:`install` adds to an Ops API app: the workbench's JSON routes
(``GET /v1/alerts``, ``POST /v1/alerts/{id}/ack|outcome``,
``GET /v1/customers/{id}/daily``, ``GET /v1/segments/{id}/customers``), the pages
(sign-in, worklist, customer, segments, operations), live updates (``/events``),
``/docs`` (Swagger UI from the ``swagger-ui-py`` package) and ``/openapi.json``
for a session or a token, the static files, and the security headers (CSP
without inline script or style) on every answer. :func:`startup` /
:func:`shutdown` run in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Runtime
from api.web.common import SECURITY_HEADERS, PageNotFound, SignInRequired, redirect, render, user_lang
from api.web.session import SessionStore, session_caller
from api.workbench.events import EventHub

log = logging.getLogger("meterwatch.api.web")

STATIC = Path(__file__).parent / "static"


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every HTTP answer (not overriding a route's own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.headers if k not in have
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def _on_signin_required(request: Request, exc: Exception) -> Response:
    if request.method == "GET":
        return redirect("/signin?next=" + request.url.path)
    return redirect("/signin")


async def _on_page_not_found(request: Request, exc: Exception) -> Response:
    caller = await session_caller(request)
    lang = await user_lang(request, caller)
    return render(request, "error.html", lang, caller, status=404, message="error.not_found")


def install(app: FastAPI, runtime: Runtime) -> None:
    """Add the workbench (routes, pages, static files, headers) to an Ops API app."""
    from api.routes import alerts, daily, members
    from api.web import auth_pages, pages

    app.state.web_sessions = SessionStore(runtime)
    app.state.web_events = EventHub(
        lambda: runtime.redis, runtime.keys.alert_events, runtime.settings.web_sse_max_streams
    )
    app.include_router(alerts.router)
    app.include_router(daily.router)
    app.include_router(members.router)
    app.include_router(auth_pages.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInRequired, _on_signin_required)
    app.add_exception_handler(PageNotFound, _on_page_not_found)
    app.add_middleware(SecurityHeaders)


async def startup(app: FastAPI) -> None:
    """Index alerts and segment members written before the workbench existed (once, in the background)."""
    rt: Runtime = app.state.runtime

    async def backfill() -> None:
        from api.routes.members import backfill_members
        from meterwatch.alertindex import backfill as run

        try:
            if await rt.redis.get(rt.keys.alert_index_version) is None:
                n = await run(rt.redis, rt.keys)
                log.info("alert index backfilled: %d alerts", n)
            if await rt.redis.get(rt.keys.segment_members_version) is None:
                n = await backfill_members(rt.redis, rt.keys)
                log.info("segment members backfilled: %d customers", n)
        except Exception as exc:  # the API serves without it; the next start retries
            log.warning("workbench backfill failed: %s", exc)

    app.state.web_backfill = asyncio.get_running_loop().create_task(backfill())


async def shutdown(app: FastAPI) -> None:
    task = getattr(app.state, "web_backfill", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await app.state.web_events.aclose()
