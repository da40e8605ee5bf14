"""The notifier service: FastAPI app whose lifespan runs the Kafka consumer and the dispatcher.

>>> from meterwatch.settings import Settings
>>> app = create_app(Settings(), consume=False)
>>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1/sms"))
['/v1/sms/inbound']
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from baselines.plans import Tariffs
from meterwatch import __version__
from meterwatch.bodylimit import BodyLimit
from meterwatch.connections import redis_client
from meterwatch.keys import Keys
from meterwatch.ratelimit import RateLimiter, SyncFn
from meterwatch.registry import RegistryPublisher
from meterwatch.settings import Settings, get_settings
from notifier import errors
from notifier.channels import PushChannel, SmsChannel, WebhookPush, make_sms_channel
from notifier.clock import Clock
from notifier.consumer import AlertConsumer
from notifier.delivery import Dispatcher
from notifier.deps import Principal
from notifier.routes import alerts, customers, digest, health, inbox, metrics, notifications, sms
from notifier.sse import InboxHub
from notifier.store import Store

log = logging.getLogger("meterwatch.notifier")


def _redis(s: Settings, max_connections: int, name: str) -> Redis:
    """A client with its own bounded pool; a caller waits up to 10 s for a free connection."""
    client: Redis = redis_client(
        s,
        pool_timeout=10,
        decode_responses=True,
        max_connections=max_connections,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        health_check_interval=15,
        client_name=name,
    )
    return client


def _check_lease(s: Settings) -> None:
    slowest = max(s.sms_timeout_s, s.push_timeout_s)
    if s.notifier_lease_s < slowest + 1.0:
        raise ValueError(
            f"MW_NOTIFIER_LEASE_S ({s.notifier_lease_s}) must be at least the slowest channel timeout "
            f"({slowest}) + 1 s, or a slow send could be taken over by another replica and sent twice"
        )


class _Services:
    """What the app runs while it serves: Redis clients, the dispatcher, the consumer, the SSE hub.

    Redis connections come from three budgets, so that one use cannot starve another: the
    HTTP routes and the consumer (``MW_NOTIFIER_REDIS_MAX_CONNECTIONS``), the dispatcher
    (``MW_NOTIFIER_DISPATCH_CONCURRENCY`` + 4, reserved for sending) and the live inbox
    streams (one pub/sub connection, ``notifier.sse``).
    """

    def __init__(self, s: Settings, clk: Clock, limiter: RateLimiter, consume: bool) -> None:
        keys = Keys(s.redis_prefix)
        self.s, self.consume, self.limiter = s, consume, limiter
        self.redis = _redis(s, max(8, s.notifier_redis_max_connections), f"{s.redis_prefix}notifier")
        self.send_redis = _redis(
            s, max(1, s.notifier_dispatch_concurrency) + 4, f"{s.redis_prefix}notifier-send"
        )
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max(8, s.notifier_dispatch_concurrency))
        )
        self.store = Store(self.redis, keys)
        limiter.sync = _rate_sync(self.store)
        self.hub = InboxHub(
            s.redis_url,
            keys.ns("inboxch:"),
            s.notifier_sse_max_streams,
            s.notifier_sse_max_per_token,
            client_name=f"{s.redis_prefix}notifier-sse",
            connect=functools.partial(redis_client, s),
        )
        self.send_store = Store(self.send_redis, keys)
        self.registry = RegistryPublisher(s)  # budget replies: registry records to the customers topic
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, app: FastAPI, sms: SmsChannel | None, push: PushChannel | None, clk: Clock) -> None:
        s = self.s
        dispatcher = Dispatcher(
            self.send_store, s, clk, sms or make_sms_channel(s, self.http), push or WebhookPush(s, self.http)
        )
        consumer = AlertConsumer(self.store, s, clk, on_recorded=dispatcher.wake)
        app.state.store, app.state.dispatcher, app.state.consumer = self.store, dispatcher, consumer
        app.state.hub, app.state.consumer_enabled = self.hub, self.consume
        app.state.registry = self.registry
        self.hub.start()
        self.tasks.append(asyncio.create_task(dispatcher.run(self.stop), name="notifier-dispatcher"))
        if self.consume:
            self.tasks.append(asyncio.create_task(consumer.run(self.stop), name="notifier-consumer"))
        log.info("notifier %s up (consume=%s, sms=%s)", __version__, self.consume, s.sms_provider)

    async def aclose(self) -> None:
        self.stop.set()
        if self.tasks:
            _done, pending = await asyncio.wait(self.tasks, timeout=10)
            for t in pending:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.hub.aclose()
        await self.registry.aclose()
        await self.limiter.aclose()
        await self.http.aclose()
        await self.send_redis.aclose()
        await self.redis.aclose()


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
    _check_lease(s)
    clk = clock or Clock()
    consume_on = s.notifier_consume if consume is None else consume
    limiter = RateLimiter(s.notifier_rate_limit_per_min, None, clock=lambda: clk.now().timestamp())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = _Services(s, clk, limiter, consume_on)
        try:
            services.start(app, sms_channel, push_channel, clk)
            yield
        finally:
            await services.aclose()

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
    app.state.tariffs = Tariffs.load(s.tariffs_file, s.default_tariff_plans)  # budget replies: the currency
    app.state.clock = clk
    app.state.limiter = limiter
    errors.install(app)
    for r in (health, alerts, notifications, digest, inbox, sms, customers, metrics):
        app.include_router(r.router)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_caller: Principal) -> dict[str, Any]:
        return app.openapi()

    app.add_middleware(BodyLimit, max_bytes=s.notifier_max_body_bytes, setting="MW_NOTIFIER_MAX_BODY_BYTES")
    return app


def _rate_sync(store: Store) -> SyncFn:
    async def sync(token_id: str, window: int, count: int) -> int:
        key = store.k.ns(f"rl:{token_id}:{window}")
        async with store.r.pipeline(transaction=False) as pipe:
            pipe.incrby(key, count)
            pipe.expire(key, 120)
            total, _ = await pipe.execute()
        return int(total)

    return sync
