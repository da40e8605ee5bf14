"""Bearer tokens shared by the Ops API and the notifier.

A token is ``mw_<token_id>_<secret>``. Only ``sha256(token)`` is stored (in
Redis, under ``Keys.token``), so a leaked Redis dump holds no usable token.
Tokens carry a role (``ops`` reads everything; ``manager`` reads only its own
customers), an expiry, and can be revoked by id.

>>> parse_token_id("mw_abc123_s3cr3t")
'abc123'
>>> parse_token_id("garbage") is None
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Literal

from pydantic import BaseModel, model_validator
from redis.asyncio import Redis

from meterwatch.keys import Keys

Role = Literal["ops", "manager"]


class TokenRecord(BaseModel):
    token_id: str
    role: Role
    manager_id: str | None = None
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked: bool = False
    label: str = ""

    @model_validator(mode="after")
    def _manager_needs_id(self) -> TokenRecord:
        if self.role == "manager" and not self.manager_id:
            raise ValueError("a manager token needs a manager_id")
        return self

    def is_valid(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def may_read(self, manager_id: str | None) -> bool:
        """Whether this token may see a customer managed by ``manager_id``."""
        if self.role == "ops":
            return True
        return manager_id is not None and hmac.compare_digest(manager_id, self.manager_id or "")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_token_id(token: str) -> str | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "mw" or not parts[1] or not parts[2]:
        return None
    return parts[1]


async def create_token(
    redis: Redis,
    keys: Keys,
    role: Role,
    manager_id: str | None = None,
    ttl_days: float | None = 365,
    label: str = "",
) -> tuple[str, TokenRecord]:
    """Issue a token; returns the secret (shown once) and its stored record."""
    token_id = secrets.token_hex(6)
    token = f"mw_{token_id}_{secrets.token_urlsafe(24)}"
    now = dt.datetime.now(dt.UTC)
    record = TokenRecord(
        token_id=token_id,
        role=role,
        manager_id=manager_id,
        created_at=now,
        expires_at=now + dt.timedelta(days=ttl_days) if ttl_days else None,
        label=label,
    )
    h = hash_token(token)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.token(h), record.model_dump_json())
        pipe.hset(keys.token_index, token_id, h)
        await pipe.execute()
    return token, record


async def verify_token(redis: Redis, keys: Keys, token: str) -> TokenRecord | None:
    """The record of a valid (known, unexpired, unrevoked) token, else None."""
    if parse_token_id(token) is None:
        return None
    raw = await redis.get(keys.token(hash_token(token)))
    if raw is None:
        return None
    record = TokenRecord.model_validate_json(raw)
    return record if record.is_valid() else None


async def revoke_token(redis: Redis, keys: Keys, token_id: str) -> bool:
    """Revoke by id; True when the token existed."""
    h = await redis.hget(keys.token_index, token_id)
    if h is None:
        return False
    h = h.decode() if isinstance(h, bytes) else h
    raw = await redis.get(keys.token(h))
    if raw is None:
        return False
    record = TokenRecord.model_validate_json(raw)
    await redis.set(keys.token(h), record.model_copy(update={"revoked": True}).model_dump_json())
    return True


async def list_tokens(redis: Redis, keys: Keys) -> list[TokenRecord]:
    out: list[TokenRecord] = []
    for h in (await redis.hgetall(keys.token_index)).values():
        h = h.decode() if isinstance(h, bytes) else h
        raw = await redis.get(keys.token(h))
        if raw is not None:
            out.append(TokenRecord.model_validate_json(raw))
    return sorted(out, key=lambda r: r.created_at)
