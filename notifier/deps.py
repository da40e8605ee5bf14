"""FastAPI dependencies (Annotated), so tests can override any of them.

Every authenticated request is counted against its token's budget of
``MW_NOTIFIER_RATE_LIMIT_PER_MIN`` requests per UTC minute (``meterwatch.ratelimit``,
shared by the replicas through Redis); over it the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from meterwatch.auth import TokenRecord, verify_token
from meterwatch.ratelimit import RateLimiter
from meterwatch.settings import Settings
from notifier.clock import Clock
from notifier.store import Store

_bearer = HTTPBearer(auto_error=False, description="a token from `meterwatch token create`")


def get_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_clock(request: Request) -> Clock:
    c: Clock = request.app.state.clock
    return c


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]


def get_limiter(request: Request) -> RateLimiter:
    lim: RateLimiter = request.app.state.limiter
    return lim


async def get_principal(
    store: StoreDep,
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenRecord:
    """The valid token of the request, else 401; over the token's rate limit, 429."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    rec = await verify_token(store.r, store.k, creds.credentials)
    if rec is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    retry = limiter.admit(rec.token_id)
    if retry:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {limiter.limit} requests per minute exceeded for this token",
            headers={"Retry-After": str(retry)},
        )
    return rec


Principal = Annotated[TokenRecord, Depends(get_principal)]


def require_ops(p: Principal) -> TokenRecord:
    if p.role != "ops":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs an ops token")
    return p


OpsPrincipal = Annotated[TokenRecord, Depends(require_ops)]
