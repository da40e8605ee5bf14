"""`meterwatch api` (the Ops API service) and `meterwatch token create|list|revoke`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from meterwatch.cli.options import add_log_level_option


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "api",
        help="run the Ops HTTP API (baselines, alerts, segments)",
        description="Run the Ops HTTP API on MW_API_HOST:MW_API_PORT (default 127.0.0.1:8000).",
    )
    p.add_argument("--host", default=None, help="listen address (default MW_API_HOST)")
    p.add_argument("--port", type=int, default=None, help="listen port (default MW_API_PORT)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; each needs about one core)"
    )
    p.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    add_log_level_option(p)
    p.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    p.set_defaults(func=_run_api)

    t = sub.add_parser("token", help="issue, list and revoke API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    c = tsub.add_parser(
        "create",
        help="issue a token (printed once; only its hash is stored)",
        description="Issue a bearer token for the Ops API and the notifier. The token is printed "
        "once on stdout; only its SHA-256 is stored in Redis.",
    )
    c.add_argument("--role", required=True, choices=["ops", "manager"])
    c.add_argument("--manager-id", default=None, help="required for --role manager")
    c.add_argument(
        "--ttl-days", type=float, default=None, help="days until expiry (default MW_TOKEN_DEFAULT_TTL_DAYS)"
    )
    c.add_argument("--no-expiry", action="store_true", help="a token that never expires")
    c.add_argument("--label", default="", help="free text to recognise the token by (e.g. who holds it)")
    c.add_argument("--json", action="store_true", help="print a JSON object with the token and its record")
    c.set_defaults(func=_redis_guard(_token_create))

    ls = tsub.add_parser("list", help="list tokens (ids and metadata, never secrets)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_redis_guard(_token_list))

    r = tsub.add_parser("revoke", help="revoke a token by id (effective within MW_API_TOKEN_CACHE_S)")
    r.add_argument("token_id")
    r.set_defaults(func=_redis_guard(_token_revoke))


def _run_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from meterwatch.logs import setup_logging
    from meterwatch.settings import get_settings

    settings = get_settings()
    app = create_app(settings, freeze_gc=True)
    if args.openapi:
        print(json.dumps(app.openapi(), indent=2))
        return 0
    if args.workers < 1:
        print("error: --workers must be >= 1", file=sys.stderr)
        return 2
    setup_logging(args.log_level.upper())
    uvicorn.run(
        # several processes need an import string; each builds its app from the same MW_ settings
        app if args.workers == 1 else "api.app:create_service_app",
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,
        log_level=args.log_level,
        access_log=args.access_log,
        server_header=False,
    )
    return 0


class _RedisDown(Exception):
    pass


def _with_redis(coro_factory: Any) -> Any:
    from redis.exceptions import RedisError

    from meterwatch.connections import redis_client, redis_target
    from meterwatch.keys import Keys
    from meterwatch.settings import get_settings

    settings = get_settings()

    async def main() -> Any:
        redis = redis_client(settings, socket_connect_timeout=3, socket_timeout=5)
        try:
            return await coro_factory(redis, Keys(settings.redis_prefix), settings)
        except RedisError as exc:
            raise _RedisDown(f"cannot use Redis at {redis_target(settings)}: {exc}") from exc
        finally:
            await redis.aclose()

    return asyncio.run(main())


def _redis_guard(func: Any) -> Any:
    """Turn an unreachable Redis into one clear line on stderr and exit status 3."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except _RedisDown as exc:
            print(f"error: {exc} (is the stack up? `meterwatch dev up`)", file=sys.stderr)
            return 3

    return run


def _token_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from meterwatch.auth import create_token

    if args.role == "manager" and not args.manager_id:
        print("error: --role manager needs --manager-id", file=sys.stderr)
        return 2
    if args.role == "ops" and args.manager_id:
        print("error: --manager-id only goes with --role manager", file=sys.stderr)
        return 2
    if args.ttl_days is not None and args.ttl_days <= 0:
        print(
            "error: --ttl-days must be > 0 (use --no-expiry for a token that never expires)", file=sys.stderr
        )
        return 2

    async def go(redis: Any, keys: Any, settings: Any) -> Any:
        ttl = None if args.no_expiry else (args.ttl_days or settings.token_default_ttl_days)
        return await create_token(redis, keys, args.role, args.manager_id, ttl, args.label)

    try:
        token, record = _with_redis(go)
    except ValidationError as exc:
        print(f"error: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"token": token, **record.model_dump(mode="json")}))
    else:
        print(token)
        expires = record.expires_at.isoformat() if record.expires_at else "never"
        who = f" manager_id={record.manager_id}" if record.manager_id else ""
        print(
            f"token id {record.token_id}: role={record.role}{who} expires={expires} "
            "(shown once; store it now)",
            file=sys.stderr,
        )
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from meterwatch.auth import list_tokens

    async def go(redis: Any, keys: Any, settings: Any) -> Any:
        return await list_tokens(redis, keys)

    records = _with_redis(go)
    if args.json:
        for rec in records:
            print(json.dumps({**rec.model_dump(mode="json"), "valid": rec.is_valid()}))
        return 0
    print(f"{'id':<14}{'role':<9}{'manager_id':<16}{'state':<9}{'expires':<27}label")
    for rec in records:
        state = "revoked" if rec.revoked else ("valid" if rec.is_valid() else "expired")
        expires = rec.expires_at.isoformat(timespec="seconds") if rec.expires_at else "never"
        print(f"{rec.token_id:<14}{rec.role:<9}{rec.manager_id or '-':<16}{state:<9}{expires:<27}{rec.label}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from meterwatch.auth import revoke_token

    async def go(redis: Any, keys: Any, settings: Any) -> Any:
        return await revoke_token(redis, keys, args.token_id)

    if _with_redis(go):
        print(f"revoked {args.token_id}")
        return 0
    print(f"error: no token with id {args.token_id!r}", file=sys.stderr)
    return 1
