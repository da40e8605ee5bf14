"""The notifier service: FastAPI app whose lifespan runs the Kafka consumer and the dispatcher.

>>> from meterwatch.settings import Settings
>>> app = create_app(Settings(), consume=False)
>>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1/sms"))
['/v1/sms/inbound']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from meterwatch import __version__
from meterwatch.keys import Keys
from meterwatch.settings import Settings, get_settings
from notifier.channels import PushChannel, SmsChannel, WebhookPush, make_sms_channel
from notifier.clock import Clock
from notifier.consumer import AlertConsumer
from notifier.delivery import Dispatcher
from notifier.deps import Principal
from notifier.routes import alerts, customers, health, inbox, metrics, notifications, sms
from notifier.store import Store

log = logging.getLogger("meterwatch.notifier")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    consume: bool | None = None,
    sms_channel: SmsChannel | None = None,
    push_channel: PushChannel | None = None,
) -> FastAPI:
    """Build the notifier. ``consume`` defaults to ``settings.notifier_consume``."""
    s = settings or get_settings()
    slowest = max(s.sms_timeout_s, s.push_timeout_s)
    if s.notifier_lease_s < slowest + 1.0:
        raise ValueError(
            f"MW_NOTIFIER_LEASE_S ({s.notifier_lease_s}) must be at least the slowest channel timeout "
            f"({slowest}) + 1 s, or a slow send could be taken over by another replica and sent twice"
        )
    clk = clock or Clock()
    consume_on = s.notifier_consume if consume is None else consume

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(
            s.redis_url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=10.0,
            health_check_interval=15,
        )
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=max(8, s.notifier_dispatch_concurrency)))
        store = Store(redis, Keys(s.redis_prefix))
        dispatcher = Dispatcher(
            store,
            s,
            clk,
            sms_channel or make_sms_channel(s, http),
            push_channel or WebhookPush(s, http),
        )
        consumer = AlertConsumer(store, s, clk, on_recorded=dispatcher.wake)
        app.state.store, app.state.dispatcher, app.state.consumer = store, dispatcher, consumer
        app.state.consumer_enabled = consume_on
        stop = asyncio.Event()
        tasks = [asyncio.create_task(dispatcher.run(stop), name="notifier-dispatcher")]
        if consume_on:
            tasks.append(asyncio.create_task(consumer.run(stop), name="notifier-consumer"))
        log.info("notifier %s up (consume=%s, sms=%s)", __version__, consume_on, s.sms_provider)
        try:
            yield
        finally:
            stop.set()
            _done, pending = await asyncio.wait(tasks, timeout=10)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.aclose()
            await redis.aclose()

    app = FastAPI(
        title="meterwatch notifier",
        version=__version__,
        description="Moderated account-manager push and customer SMS for consumption alerts.",
        lifespan=lifespan,
        openapi_url=None,  # every endpoint but health needs a token: the spec is served below
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = s
    app.state.clock = clk

    @app.exception_handler(RedisError)
    async def _redis_down(_request: Request, exc: RedisError) -> JSONResponse:
        log.warning("redis error: %s", type(exc).__name__)
        return JSONResponse({"detail": "storage unavailable, retry later"}, status_code=503)

    for r in (health, alerts, notifications, inbox, sms, customers, metrics):
        app.include_router(r.router)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_caller: Principal) -> dict[str, Any]:
        return app.openapi()

    return app
