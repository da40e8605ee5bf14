"""FastAPI dependencies of the Ops API: settings, Redis, authentication, rate limit.

Authentication: ``Authorization: Bearer mw_<id>_<secret>`` (tokens from
``meterwatch token create``; see :mod:`meterwatch.auth`). A verified token is
cached in-process for ``MW_API_TOKEN_CACHE_S`` seconds (default 5), so the hot
path does not go to Redis for authentication on every request; revoking a
token therefore takes effect within that bound. Unknown tokens are cached the
same way (negative cache), so a flood of bad tokens does not hammer Redis.
Expiry is checked on every request against the cached record.

Rate limit: ``MW_API_RATE_LIMIT_PER_MIN`` requests per token and UTC minute,
checked when the token is (see :mod:`api.ratelimit`: counted in-process,
synchronised to Redis in the background, shared by every API process);
over the limit the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from api.errors import ApiError
from api.metrics import ApiMetrics
from api.muxredis import MuxRedis
from api.snapshots import Snapshots
from meterwatch.auth import TokenRecord, hash_token, parse_token_id, verify_token
from meterwatch.connections import redis_auth_url, redis_client, redis_is_plain
from meterwatch.keys import Keys
from meterwatch.ratelimit import RateLimiter
from meterwatch.settings import Settings

__all__ = ["Caller", "Ctx", "OpsCtx", "Runtime", "RuntimeDep", "SettingsDep", "get_runtime", "get_settings"]

_CACHE_MAX = 10_000


class TokenCache:
    """token hash -> (record or None for an unknown token, monotonic expiry)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[str, tuple[TokenRecord | None, float]] = {}

    def get(self, token_hash: str) -> tuple[bool, TokenRecord | None]:
        hit = self._items.get(token_hash)
        if hit is None or hit[1] < time.monotonic():
            return False, None
        return True, hit[0]

    def put(self, token_hash: str, record: TokenRecord | None) -> None:
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        if len(self._items) >= _CACHE_MAX:
            self._items = {k: v for k, v in self._items.items() if v[1] >= now}
            if len(self._items) >= _CACHE_MAX:
                self._items.clear()
        self._items[token_hash] = (record, now + self.ttl_s)

    def clear(self) -> None:
        self._items.clear()


@dataclass
class Runtime:
    """Per-app state: settings, key layout, Redis pool, token cache, metrics."""

    settings: Settings
    keys: Keys = field(init=False)
    tokens: TokenCache = field(init=False)
    limiter: RateLimiter = field(init=False)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    _redis: Redis | None = None
    _hot: MuxRedis | None = None
    _snapshots: Snapshots | None = None

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.redis_prefix)
        self.tokens = TokenCache(self.settings.api_token_cache_s)
        self.limiter = RateLimiter(self.settings.api_rate_limit_per_min, self._sync_rate)

    async def _sync_rate(self, token_id: str, window: int, count: int) -> int:
        key = self.keys.ratelimit(token_id, window)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(key, count)
        pipe.expire(key, 120)
        total, _ = await pipe.execute()
        return int(total)

    @property
    def redis(self) -> Redis:
        """The app's Redis client (created lazily, on the event loop that first uses it)."""
        if self._redis is None:
            self._redis = redis_client(
                self.settings,
                max_connections=256,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
                health_check_interval=30,
            )
        return self._redis

    @property
    def snapshots(self) -> Snapshots:
        """Builds the customers' baseline snapshots on read (an engine configured like the worker's)."""
        if self._snapshots is None:
            self._snapshots = Snapshots.for_settings(self.settings)
        return self._snapshots

    @property
    def hot(self) -> MuxRedis | Redis:
        """The client of the hot-path reads (``get``/``mget``): auto-pipelined on plain ``redis://``."""
        if not redis_is_plain(self.settings):
            return self.redis  # TLS, unix sockets, Sentinel: redis-py handles them
        if self._hot is None:
            self._hot = MuxRedis(redis_auth_url(self.settings), timeout_s=2.0)
        return self._hot

    async def aclose(self) -> None:
        await self.limiter.aclose()
        if self._hot is not None:
            await self._hot.aclose()
            self._hot = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


async def get_runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime` (async: FastAPI would run a sync dependency in a thread)."""
    rt: Runtime = request.app.state.runtime
    return rt


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with (tests may override this dependency).

    Not :func:`meterwatch.settings.get_settings` overridden through
    ``app.dependency_overrides``: any override makes FastAPI rebuild every
    dependency on every request, which costs more than the whole baseline read.
    """
    return (await get_runtime(request)).settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_WWW = {"WWW-Authenticate": 'Bearer realm="meterwatch"'}


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, _WWW)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    token: TokenRecord
    rt: Runtime

    @property
    def is_ops(self) -> bool:
        return self.token.role == "ops"

    def may_read(self, manager_id: str | None) -> bool:
        return self.token.may_read(manager_id)

    async def read(self, build: Callable[[Pipeline], Any]) -> list[Any]:
        """Run the reads ``build`` queues on a pipeline, in one round trip."""
        pipe = self.rt.redis.pipeline(transaction=False)
        build(pipe)
        results: list[Any] = await pipe.execute()
        return results


class TokenAuth(HTTPBearer):
    """The one authentication dependency: bearer token -> :class:`Caller`.

    A subclass of ``HTTPBearer`` so that FastAPI documents the security scheme
    in OpenAPI, but one flat dependency (no sub-dependencies): FastAPI's
    per-dependency cost is a visible share of a request this small.
    """

    def __init__(self, ops_only: bool = False) -> None:
        super().__init__(
            scheme_name="bearerAuth",
            auto_error=False,
            bearerFormat="mw_<id>_<secret>",
            description="A token from `meterwatch token create` (role ops or manager).",
        )
        self.ops_only = ops_only

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        rt: Runtime = request.app.state.runtime
        header = request.headers.get("authorization")
        if not header:
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("expected an Authorization header of the form 'Bearer <token>'")
        if len(token) > 256 or parse_token_id(token) is None:
            raise _unauthorized("malformed bearer token")
        h = hash_token(token)
        hit, record = rt.tokens.get(h)
        if not hit:
            record = await verify_token(rt.redis, rt.keys, token)
            rt.tokens.put(h, record)
        if record is None or not record.is_valid():
            raise _unauthorized("unknown, expired or revoked token")
        retry = rt.limiter.admit(record.token_id)
        if retry:
            limit = rt.settings.api_rate_limit_per_min
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {limit} requests per minute exceeded for this token",
                {"Retry-After": str(retry)},
            )
        if self.ops_only and record.role != "ops":
            raise ApiError(403, "forbidden", "this endpoint needs a token with role ops")
        return Caller(record, rt)


#: Any valid token (role ops or manager).
Ctx = Annotated[Caller, Depends(TokenAuth())]
#: A valid token with role ops.
OpsCtx = Annotated[Caller, Depends(TokenAuth(ops_only=True))]
