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
    """Redis answers and, when this replica consumes, the Kafka consumer is connected and the broker answers.

    503 names the problem in ``problems`` (e.g. Kafka unreachable, an alerts topic with the
    wrong partition count and what to do about it).
    """
    st = request.app.state
    checks: dict[str, bool] = {}
    problems: dict[str, str] = {}
    try:
        checks["redis"] = bool(await st.store.r.ping())
    except (RedisError, OSError) as e:
        checks["redis"] = False
        problems["redis"] = f"redis unreachable: {type(e).__name__}"
    if st.consumer_enabled:
        checks["kafka"] = bool(st.consumer.connected)
        if not checks["kafka"]:
            problems["kafka"] = st.consumer.problem or "consumer not connected"
    ok = all(checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=200 if ok else 503)
