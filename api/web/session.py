"""Browser sessions of the workbench: sign in with a token once, then a signed cookie.

* ``POST /signin`` takes the token in the form body (never in a URL), verifies it
  like a bearer token and creates a session in Redis (``Keys.web_session``, keyed
  by sha256 of a random 32-byte id, expiring after ``MW_WEB_SESSION_TTL_S``). The
  cookie ``mw_session`` holds ``<id>.<expiry>.<HMAC-SHA256>`` under the signing
  secret (``MW_WEB_SESSION_SECRET``, else one generated at first start and kept
  in Redis): HttpOnly, SameSite=Strict, Path=/, Secure on https.
* Every request re-checks the token behind the session (cached like bearer tokens
  for ``MW_API_TOKEN_CACHE_S``): revoking the token ends its sessions.
* ``POST /signout`` deletes the session: the old cookie is worthless afterwards.
* CSRF: a per-session random token, in a ``<meta>`` for the page's own script and a
  hidden field of every form; every state-changing request from a cookie session
  must carry it (form field ``csrf`` or header ``X-CSRF-Token``) and, when the
  browser sends ``Origin``, come from the same origin. The sign-in form is
  protected the same way with a short-lived pre-session cookie (double submit).

>>> s = sign(b"k", "abc", 100)
>>> unsign(b"k", s, now=50), unsign(b"k", s, now=150), unsign(b"other", s, now=50)
('abc', None, None)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from pydantic import BaseModel

from api.deps import Caller, Runtime
from api.errors import ApiError
from meterwatch.auth import TokenRecord, hash_token, parse_token_id

COOKIE = "mw_session"
PRE_COOKIE = "mw_pre"
LANG_COOKIE = "mw_lang"
PRE_TTL_S = 1800
Lang = Literal["en", "zh-CN"]


class Session(BaseModel):
    token_hash: str
    token_id: str
    role: str
    manager_id: str | None = None
    csrf: str
    created_at: dt.datetime
    expires_at: dt.datetime


def sign(secret: bytes, sid: str, expires: int) -> str:
    msg = f"{sid}.{expires}".encode()
    return f"{sid}.{expires}.{hmac.new(secret, msg, hashlib.sha256).hexdigest()}"


def unsign(secret: bytes, value: str, now: float | None = None) -> str | None:
    """The session id of a valid, unexpired cookie value; else None."""
    parts = value.split(".")
    if len(parts) != 3 or len(value) > 200:
        return None
    sid, exp, sig = parts
    try:
        expires = int(exp)
    except ValueError:
        return None
    want = hmac.new(secret, f"{sid}.{exp}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return sid


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """Creates, loads and ends sessions; owns the signing secret."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._secret: bytes | None = None
        self._lock = asyncio.Lock()

    async def secret(self) -> bytes:
        if self._secret is not None:
            return self._secret
        async with self._lock:
            if self._secret is None:
                configured = self.rt.settings.web_session_secret.get_secret_value()
                if configured:
                    self._secret = configured.encode()
                else:
                    key = self.rt.keys.web_secret
                    await self.rt.redis.set(key, secrets.token_hex(32), nx=True)
                    raw = await self.rt.redis.get(key)
                    self._secret = raw if isinstance(raw, bytes) else str(raw).encode()
        return self._secret

    async def token_record(self, token_hash: str) -> TokenRecord | None:
        """The valid token behind a session (cached like bearer tokens)."""
        rt = self.rt
        hit, record = rt.tokens.get(token_hash)
        if not hit:
            raw = await rt.redis.get(rt.keys.token(token_hash))
            record = TokenRecord.model_validate_json(raw) if raw is not None else None
            rt.tokens.put(token_hash, record)
        return record if record is not None and record.is_valid() else None

    async def create(self, token: str) -> tuple[str, Session] | None:
        """A new session for a valid token: (cookie value, session); None for a bad token."""
        if len(token) > 256 or parse_token_id(token) is None:
            return None
        h = hash_token(token)
        record = await self.token_record(h)
        if record is None:
            return None
        ttl = self.rt.settings.web_session_ttl_s
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=ttl)
        if record.expires_at is not None:
            expires = min(expires, record.expires_at)
        sess = Session(
            token_hash=h,
            token_id=record.token_id,
            role=record.role,
            manager_id=record.manager_id,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=expires,
        )
        sid = secrets.token_urlsafe(32)
        life = max(1, int((expires - now).total_seconds()))
        await self.rt.redis.set(self.rt.keys.web_session(_sid_hash(sid)), sess.model_dump_json(), ex=life)
        return sign(await self.secret(), sid, int(expires.timestamp())), sess

    async def load(self, cookie: str | None) -> tuple[Session, TokenRecord] | None:
        if not cookie:
            return None
        sid = unsign(await self.secret(), cookie)
        if sid is None:
            return None
        raw = await self.rt.redis.get(self.rt.keys.web_session(_sid_hash(sid)))
        if raw is None:
            return None
        sess = Session.model_validate_json(raw)
        record = await self.token_record(sess.token_hash)
        if record is None:
            return None
        return sess, record

    async def end(self, cookie: str | None) -> None:
        if not cookie:
            return
        sid = unsign(await self.secret(), cookie)
        if sid is not None:
            await self.rt.redis.delete(self.rt.keys.web_session(_sid_hash(sid)))


def store_of(request: Request) -> SessionStore:
    rt: Runtime = request.app.state.runtime
    st: SessionStore | None = getattr(request.app.state, "web_sessions", None)
    if st is None:
        st = SessionStore(rt)
        request.app.state.web_sessions = st
    return st


@dataclass(frozen=True)
class WebCaller(Caller):
    """A :class:`Caller` from a browser session (same rules as a bearer token)."""

    session: Session


async def session_caller(request: Request) -> WebCaller | None:
    """The signed-in caller of a page request, or None; 429 over the token's rate limit."""
    store = store_of(request)
    found = await store.load(request.cookies.get(COOKIE))
    if found is None:
        return None
    sess, record = found
    retry = store.rt.limiter.admit(record.token_id)
    if retry:
        raise ApiError(
            429, "rate_limited", "too many requests; retry in a minute", {"Retry-After": str(retry)}
        )
    return WebCaller(record, store.rt, sess)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def csrf_ok(request: Request, sent: str | None, expected: str) -> bool:
    token = request.headers.get("x-csrf-token") or sent or ""
    return same_origin(request) and bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def cookie_secure(request: Request, rt: Runtime) -> bool:
    return request.url.scheme == "https" or rt.settings.web_cookie_secure
