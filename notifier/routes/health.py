"""Health and readiness (no token: load balancers and probes call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Redis answers and, when this replica consumes, the Kafka consumer is connected."""
    st = request.app.state
    checks: dict[str, bool] = {}
    try:
        checks["redis"] = bool(await st.store.r.ping())
    except (RedisError, OSError):
        checks["redis"] = False
    if st.consumer_enabled:
        checks["kafka"] = bool(st.consumer.connected)
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
