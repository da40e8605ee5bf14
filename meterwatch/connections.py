"""Connections to Kafka and Redis, addressed and secured as the settings say.

Every client meterwatch makes gets its address and security here: the worker's Faust app
(:func:`faust_broker_credentials`), every aiokafka producer, consumer and admin client
(:func:`kafka_client_kwargs`), and every Redis client (:func:`redis_client`,
:func:`redis_sync_client`): password or ACL user, TLS (``rediss://`` with a CA file and an
optional client certificate), or the master of a Sentinel set (failover). Nothing else
builds a client's security, so a setting reaches every service at once.

With the defaults (PLAINTEXT Kafka, a plain ``redis://`` URL) the clients are built exactly
as before: no security arguments at all.

>>> from meterwatch.settings import Settings
>>> kafka_client_kwargs(Settings(kafka_bootstrap="k1:9092,k2:9092"))
{'bootstrap_servers': 'k1:9092,k2:9092'}
>>> s = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="mw",
...              kafka_sasl_password="pw")
>>> sorted(kafka_security(s))
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
>>> redis_target(Settings(redis_url="redis://:pw@r1:6379/2"))
'redis://r1:6379/2'
>>> redis_target(Settings(redis_sentinels="s1:26379,s2:26379", redis_sentinel_service="mw"))
"Sentinel master 'mw' via s1:26379,s2:26379"

A credential or certificate the server refuses is :class:`CredentialsError`, one line
naming the settings to check (:func:`check_kafka`, :func:`check_redis` find it before a
service starts; ``meterwatch`` commands print it instead of a traceback or a silent retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import quote, urlparse

from meterwatch.settings import Settings

__all__ = [
    "CredentialsError",
    "check_kafka",
    "check_redis",
    "faust_broker_credentials",
    "kafka_client_kwargs",
    "kafka_security",
    "kafka_ssl_context",
    "redis_auth_url",
    "redis_client",
    "redis_is_plain",
    "redis_options",
    "redis_sync_client",
    "redis_target",
    "security_configured",
]


class CredentialsError(RuntimeError):
    """A server refused our credentials or certificate (retrying cannot help); one line."""


# ------------------------------------------------------------------------------------ Kafka


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the Kafka clients (None unless the protocol is SSL or SASL_SSL)."""
    s = settings
    if not s.kafka_security_protocol.endswith("SSL"):
        return None
    ctx = ssl.create_default_context(cafile=s.kafka_ssl_cafile or None)
    ctx.check_hostname = s.kafka_ssl_check_hostname
    if s.kafka_ssl_certfile:
        ctx.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile or None)
    return ctx


def kafka_security(settings: Settings) -> dict[str, Any]:
    """aiokafka's security arguments (``{}`` for PLAINTEXT: the clients' defaults)."""
    s = settings
    if s.kafka_security_protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    ctx = kafka_ssl_context(s)
    if ctx is not None:
        out["ssl_context"] = ctx
    if s.kafka_security_protocol.startswith("SASL_"):
        out["sasl_mechanism"] = s.kafka_sasl_mechanism
        out["sasl_plain_username"] = s.kafka_sasl_username
        out["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value()
    return out


def kafka_client_kwargs(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """``bootstrap_servers`` and the security arguments of an aiokafka client, plus ``kwargs``."""
    return {"bootstrap_servers": settings.kafka_bootstrap, **kafka_security(settings), **kwargs}


def faust_broker_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` (None for PLAINTEXT; an SSL context; SASL credentials)."""
    s = settings
    ctx = kafka_ssl_context(s)
    if not s.kafka_security_protocol.startswith("SASL_"):
        return ctx
    from faust.auth import SASLCredentials

    return SASLCredentials(
        username=s.kafka_sasl_username,
        password=s.kafka_sasl_password.get_secret_value(),
        ssl_context=ctx,
        mechanism=s.kafka_sasl_mechanism,
    )


async def check_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    """Raise :class:`CredentialsError` when a bootstrap broker refuses our TLS or SASL credentials.

    A broker that does not answer is not an error here (the services wait for Kafka).
    """
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError

    s = settings
    security = kafka_security(s)
    for address in s.kafka_bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **security),
                timeout_s,
            )
        except (ConnectionRefusedError, TimeoutError):
            continue
        except ssl.SSLError as exc:
            raise CredentialsError(_kafka_tls_problem(s, address, exc)) from None
        except KafkaError as exc:
            if "SASL" in type(exc).__name__ or "Authentication" in type(exc).__name__:
                raise CredentialsError(
                    f"Kafka at {address} refused MW_KAFKA_SASL_USERNAME={s.kafka_sasl_username!r} "
                    f"({s.kafka_sasl_mechanism}): {_first_line(exc)} - check MW_KAFKA_SASL_PASSWORD "
                    "(or _FILE) and the broker's SCRAM credentials"
                ) from None
            continue
        except OSError:
            continue
        conn.close()
        return


def _kafka_tls_problem(s: Settings, address: str, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"Kafka at {address}: its TLS certificate is not trusted ({exc.verify_message}) - check "
            f"MW_KAFKA_SSL_CAFILE={s.kafka_ssl_cafile or '(system store)'!r} and "
            "MW_KAFKA_SSL_CHECK_HOSTNAME"
        )
    return (
        f"Kafka at {address}: the TLS handshake failed ({exc.reason or _first_line(exc)}) - is it a TLS "
        f"listener (MW_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}), and does it want a client "
        "certificate (MW_KAFKA_SSL_CERTFILE)?"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------------ Redis


def redis_options(settings: Settings) -> dict[str, Any]:
    """redis-py's credential and TLS arguments (``{}`` for a plain URL without a password)."""
    s = settings
    out: dict[str, Any] = {}
    if s.redis_username:
        out["username"] = s.redis_username
    if s.redis_password.get_secret_value():
        out["password"] = s.redis_password.get_secret_value()
    if s.redis_url.startswith("rediss://"):
        out["ssl_cert_reqs"] = "required"
        out["ssl_check_hostname"] = s.redis_ssl_check_hostname
        if s.redis_ssl_cafile:
            out["ssl_ca_certs"] = s.redis_ssl_cafile
        if s.redis_ssl_certfile:
            out["ssl_certfile"] = s.redis_ssl_certfile
            out["ssl_keyfile"] = s.redis_ssl_keyfile or None
    return out


def redis_is_plain(settings: Settings) -> bool:
    """A plain ``redis://`` TCP connection, no Sentinel (the API's auto-pipelined client can use it)."""
    return settings.redis_url.startswith("redis://") and not settings.redis_sentinels


def redis_auth_url(settings: Settings) -> str:
    """``MW_REDIS_URL`` with ``MW_REDIS_USERNAME``/``PASSWORD`` in it (for clients that take a URL only).

    Never log it. A URL that carries credentials already is returned as it is.

    >>> redis_auth_url(Settings(redis_url="redis://r:6379/1", redis_password="p@ss"))
    'redis://:p%40ss@r:6379/1'
    """
    s = settings
    u = urlparse(s.redis_url)
    password = s.redis_password.get_secret_value()
    if u.password or not password or u.scheme == "unix":
        return s.redis_url
    user = quote(s.redis_username, safe="")
    return u._replace(netloc=f"{user}:{quote(password, safe='')}@{u.netloc}").geturl()


def redis_target(settings: Settings) -> str:
    """Where Redis is, for messages: the URL without credentials, or the Sentinel set."""
    s = settings
    if s.redis_sentinels:
        return f"Sentinel master {s.redis_sentinel_service!r} via {s.redis_sentinels}"
    u = urlparse(s.redis_url)
    return u._replace(netloc=u.netloc.rpartition("@")[2]).geturl()


def _sentinel_hosts(settings: Settings) -> list[tuple[str, int]]:
    out = []
    for part in settings.redis_sentinels.split(","):
        host, _, port = part.strip().rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def _db(settings: Settings) -> int:
    path = urlparse(settings.redis_url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _sentinel_args(settings: Settings, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments of the sentinels' own clients, arguments of the master's connections)."""
    s = settings
    tls = {k: v for k, v in redis_options(s).items() if k.startswith("ssl_")}
    sentinel_kw: dict[str, Any] = {
        "socket_timeout": kwargs.get("socket_timeout", 2.0),
        "socket_connect_timeout": kwargs.get("socket_connect_timeout", 2.0),
        **tls,
    }
    if tls:
        sentinel_kw["ssl"] = True
    if s.redis_sentinel_password.get_secret_value():
        sentinel_kw["password"] = s.redis_sentinel_password.get_secret_value()
    master_kw = {**redis_options(s), "db": _db(s), **kwargs}
    if tls:
        master_kw["ssl"] = True
    return sentinel_kw, master_kw


def redis_client(settings: Settings, *, pool_timeout: float | None = None, **kwargs: Any) -> Any:
    """A ``redis.asyncio.Redis`` for ``settings`` (``kwargs``: redis-py's client arguments).

    ``pool_timeout``: a bounded pool (``max_connections``) whose callers wait up to this long for
    a free connection instead of failing. With ``MW_REDIS_SENTINELS`` the client talks to the
    current master of ``MW_REDIS_SENTINEL_SERVICE`` and follows a failover; closing the
    client closes its sentinel connections too.
    """
    from redis.asyncio import BlockingConnectionPool, Redis

    if not settings.redis_sentinels:
        options = {**redis_options(settings), **kwargs}
        if pool_timeout is None:
            return Redis.from_url(settings.redis_url, **options)
        pool = BlockingConnectionPool.from_url(settings.redis_url, timeout=pool_timeout, **options)
        return Redis.from_pool(pool)
    from redis.asyncio.sentinel import Sentinel

    sentinel_kw, master_kw = _sentinel_args(settings, kwargs)
    sentinel = Sentinel(_sentinel_hosts(settings), sentinel_kwargs=sentinel_kw)  # type: ignore[no-untyped-call]
    pool_class = _async_pool_class(blocking=pool_timeout is not None)
    if pool_timeout is not None:
        master_kw["timeout"] = pool_timeout
    return sentinel.master_for(
        settings.redis_sentinel_service, redis_class=Redis, connection_pool_class=pool_class, **master_kw
    )


def _async_pool_class(*, blocking: bool) -> Any:
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio.sentinel import SentinelConnectionPool

    class OwnedSentinelPool(SentinelConnectionPool):
        """Closes the sentinels' connections with its own (the client owns the Sentinel)."""

        async def disconnect(self, inuse_connections: bool = True) -> None:
            await super().disconnect(inuse_connections)
            if inuse_connections:  # the client is closing (not a master switch)
                for sentinel in self.sentinel_manager.sentinels:
                    with contextlib.suppress(Exception):
                        await sentinel.aclose()

    if not blocking:
        return OwnedSentinelPool

    class BlockingSentinelPool(OwnedSentinelPool, BlockingConnectionPool):
        """A Sentinel pool whose callers wait for a free connection (``timeout``)."""

    return BlockingSentinelPool


def redis_sync_client(settings: Settings, **kwargs: Any) -> Any:
    """A synchronous ``redis.Redis`` for ``settings`` (CLI tools, test clean-up)."""
    import redis

    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **{**redis_options(settings), **kwargs})
    from redis.sentinel import Sentinel

    sentinel_kw, master_kw = _sentinel_args(settings, kwargs)
    sentinel: Any = Sentinel(_sentinel_hosts(settings), sentinel_kwargs=sentinel_kw)  # type: ignore[no-untyped-call]
    return sentinel.master_for(settings.redis_sentinel_service, redis_class=redis.Redis, **master_kw)


def check_redis(settings: Settings, timeout_s: float = 5.0) -> None:
    """Raise :class:`CredentialsError` when Redis refuses our password, ACL user or TLS.

    A Redis (or Sentinel set) that does not answer is not an error here (the services retry).
    """
    import redis

    s = settings
    client = redis_sync_client(s, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        if not (s.redis_password.get_secret_value() or urlparse(s.redis_url).password):
            raise CredentialsError(
                f"Redis at {redis_target(s)} wants a password: {_first_line(exc)} - set MW_REDIS_PASSWORD "
                "(or _FILE; and MW_REDIS_USERNAME for an ACL user)"
            ) from None
        who = f"ACL user MW_REDIS_USERNAME={s.redis_username!r}" if s.redis_username else "the password"
        raise CredentialsError(
            f"Redis at {redis_target(s)} refused {who}: {_first_line(exc)} - check MW_REDIS_PASSWORD "
            "(or _FILE)"
        ) from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc) or "AUTH" in str(exc):
            raise CredentialsError(
                f"Redis at {redis_target(s)} wants a password: {_first_line(exc)} - set MW_REDIS_PASSWORD "
                "(and MW_REDIS_USERNAME for an ACL user)"
            ) from None
        raise
    except redis.ConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError) or "SSL" in str(exc):
            raise CredentialsError(
                f"Redis at {redis_target(s)}: TLS failed ({_first_line(exc)}) - check MW_REDIS_URL "
                "(rediss://), MW_REDIS_SSL_CAFILE and MW_REDIS_SSL_CHECK_HOSTNAME"
            ) from None
        return  # not answering: the services wait and retry
    except redis.RedisError:
        return
    finally:
        client.close()


def security_configured(settings: Settings) -> tuple[bool, bool]:
    """(Kafka, Redis): whether any credential, TLS or Sentinel setting is in use."""
    s = settings
    kafka = s.kafka_security_protocol != "PLAINTEXT"
    redis = bool(
        s.redis_username
        or s.redis_password.get_secret_value()
        or s.redis_url.startswith("rediss://")
        or s.redis_sentinels
        or urlparse(s.redis_url).password
    )
    return kafka, redis
