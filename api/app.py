"""The Ops API application factory.

>>> from meterwatch.settings import Settings
>>> app = create_app(Settings(redis_prefix="doctest:"))
>>> sorted(app.openapi()["paths"])  # doctest: +NORMALIZE_WHITESPACE
['/healthz', '/metrics', '/readyz', '/v1/alerts', '/v1/alerts/{alert_id}/ack',
 '/v1/alerts/{alert_id}/outcome', '/v1/baselines', '/v1/customers/{customer_id}',
 '/v1/customers/{customer_id}/alerts', '/v1/customers/{customer_id}/baseline',
 '/v1/customers/{customer_id}/budget', '/v1/customers/{customer_id}/daily',
 '/v1/customers/{customer_id}/occupancy', '/v1/segments',
 '/v1/segments/{segment_id}/customers', '/v1/tariffs', '/v1/tariffs/{plan_id}']
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, web
from api.deps import Runtime
from api.metrics import MetricsMiddleware
from api.routes import baselines, budget, customers, health, occupancy, segments, tariffs
from baselines.plans import Tariffs
from meterwatch import __version__
from meterwatch.bodylimit import BodyLimit
from meterwatch.registry import RegistryPublisher
from meterwatch.settings import Settings, get_settings

DESCRIPTION = """\
HTTP API over meterwatch's Redis read model: a customer's current consumption
baseline (with its bill figures), daily series, alert history, registry record,
the customer segments, alerts across customers and their lifecycle (acknowledge,
record an outcome) and the tariff catalogue. A customer's budget is published to the
customers topic (Kafka stays the source of truth).

Authentication: `Authorization: Bearer <token>` with a token from
`meterwatch token create --role ops|manager [--manager-id ID]`. Role `ops` reads
every customer; role `manager` reads only the customers whose `manager_id` is
its own (any other customer answers 404, exactly like an unknown one). Only
`/healthz` and `/readyz` are open; this document (and `/docs`) needs a token or a
workbench session (sign in at `/signin`).
Every error is a JSON body `{"error": code, "message": text}`.
"""


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """Build the Ops API; ``settings`` defaults to :func:`meterwatch.settings.get_settings`.

    ``freeze_gc`` (the service sets it): at startup, collect once and move every
    object allocated so far (modules, FastAPI, pydantic schemas: ~70k objects)
    out of the cyclic collector's sight with :func:`gc.freeze`. A full
    collection over them takes 100+ ms on a busy small machine, a pause every
    request in flight would wait for; afterwards it only walks what requests
    allocate.
    """
    settings = settings or get_settings()
    runtime = Runtime(settings)
    registry = RegistryPublisher(settings)  # budget changes: registry records to the customers topic

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            app.openapi()  # build the schema now: it is long-lived too
            gc.collect()
            gc.freeze()
        await web.startup(app)
        try:
            yield
        finally:
            await web.shutdown(app)
            await registry.aclose()
            await runtime.aclose()

    app = FastAPI(
        title="meterwatch Ops API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "customers", "description": "Per-customer baseline, alerts and registry record."},
            {"name": "alerts", "description": "Alerts across customers and their lifecycle (the workbench)."},
            {"name": "segments", "description": "The online customer segments."},
            {"name": "tariffs", "description": "The tariff catalogue the bills are priced with."},
            {"name": "health", "description": "Liveness, readiness, Prometheus metrics."},
        ],
    )
    app.state.runtime = runtime
    app.state.tariffs = Tariffs.load(settings.tariffs_file, settings.default_tariff_plans)
    # the engine the baselines are built with on read (rules file, tariffs), loaded now: a setting
    # the API cannot use fails its start, not every read
    _ = runtime.snapshots
    app.state.registry = registry
    errors.install(app)
    app.include_router(customers.router)
    app.include_router(baselines.router)
    app.include_router(segments.router)
    app.include_router(tariffs.router)
    app.include_router(budget.router)
    app.include_router(occupancy.router)
    app.include_router(health.router)
    web.install(app, runtime)  # the workbench: alerts, daily, members, pages, /docs, /openapi.json
    # bodies (the budget, the workbench forms, lifecycle JSON: a few KB) are bounded: 413 before parsing
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes, setting="MW_API_MAX_BODY_BYTES")
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    return app


def create_service_app() -> FastAPI:
    """The app as ``meterwatch api`` runs it (uvicorn factory for ``--workers N``)."""
    return create_app(freeze_gc=True)
