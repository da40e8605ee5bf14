"""Liveness, readiness and Prometheus metrics.

``/healthz`` and ``/readyz`` are open (no token: load balancers and
orchestrators call them); ``/metrics`` needs a token with role ops.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from redis.exceptions import RedisError

from api.deps import OpsCtx, RuntimeDep, SettingsDep
from api.errors import error_response, error_responses
from api.metrics import decode_counters

router = APIRouter(tags=["health"])

PIPELINE_SERVICES = ("worker", "notifier")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    redis: Literal["ok"] = "ok"
    readmodel_age_s: float
    max_staleness_s: float


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: Redis reachable and the read model fresh",
    description=(
        "200 when Redis answers PING and the worker's read-model heartbeat is newer than "
        "`MW_API_READY_MAX_STALENESS_S` seconds; otherwise 503 with the reason."
    ),
    responses=error_responses(503),
)
async def readyz(rt: RuntimeDep, settings: SettingsDep) -> Response | Ready:
    try:
        pipe = rt.redis.pipeline(transaction=False)
        pipe.ping()
        pipe.get(rt.keys.heartbeat)
        _, beat = await pipe.execute()
    except (RedisError, OSError) as exc:
        return error_response(503, "not_ready", f"redis unreachable: {type(exc).__name__}")
    limit = settings.api_ready_max_staleness_s
    if beat is None:
        return error_response(503, "not_ready", "read model never written (no worker heartbeat)")
    try:
        age = time.time() - float(beat)
    except ValueError:
        return error_response(503, "not_ready", "read-model heartbeat is not a number")
    if age > limit:
        return error_response(
            503, "not_ready", f"read model stale: last worker flush {age:.1f} s ago (limit {limit:g} s)"
        )
    return Ready(readmodel_age_s=round(max(age, 0.0), 3), max_staleness_s=limit)


@router.get(
    "/metrics",
    summary="Prometheus metrics (role ops)",
    description=(
        "Prometheus text format: this API's request counts and latency "
        "(`meterwatch_api_*`), then the worker's and the notifier's key counters as they "
        "publish them to Redis, with a `service` label (`meterwatch_*{service=...}`)."
    ),
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 429, 503),
    },
)
async def metrics(caller: OpsCtx) -> Response:
    keys = caller.rt.keys
    raw = await caller.read(lambda p: [p.hgetall(keys.metrics(s)) for s in PIPELINE_SERVICES])
    pipeline = {s: decode_counters(r) for s, r in zip(PIPELINE_SERVICES, raw, strict=True) if r}
    return Response(caller.rt.metrics.render(pipeline), media_type="text/plain; version=0.0.4; charset=utf-8")
