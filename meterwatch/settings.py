"""The one configuration module of meterwatch.

Every service and script reads its configuration here: environment variables
with the prefix ``MW_`` (or a ``.env`` file in the working directory). Names
listed in CONTRACTS.md are kept stable; the rest may grow.

>>> s = Settings(kafka_bootstrap="127.0.0.1:19092", redis_url="redis://127.0.0.1:16379/0")
>>> s.kafka_port, s.redis_port
(19092, 16379)

Values are checked when the settings are built (ports 1-65535, ``host:port`` lists, Redis
URLs); :func:`settings_error` turns a failure into one line naming the variable:

>>> try:
...     Settings(kafka_bootstrap="127.0.0.1:99999")
... except ValueError as exc:
...     print(settings_error(exc))
MW_KAFKA_BOOTSTRAP='127.0.0.1:99999': port 99999 is not in 1-65535
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "meterwatch"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "meterwatch"


def check_host_ports(value: str) -> str:
    """Check a comma-separated ``host:port`` list (Kafka bootstrap servers).

    >>> check_host_ports("a:9092,[::1]:9093")
    'a:9092,[::1]:9093'
    >>> check_host_ports("a")
    Traceback (most recent call last):
    ...
    ValueError: 'a' is not host:port
    """
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or not all(parts):
        raise ValueError("expected host:port[,host:port...]")
    for part in parts:
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port:
            raise ValueError(f"{part!r} is not host:port")
        _port_number(port)
    return value


def _none_if_blank(value: object) -> object:
    """An optional path given as ``""`` or ``null`` (``MW_X=`` in an env file, a JSON dump of None) is unset.

    >>> _none_if_blank("null"), _none_if_blank(""), _none_if_blank("a.json")
    (None, None, 'a.json')
    """
    if isinstance(value, str) and value.strip() in ("", "null", "None"):
        return None
    return value


#: a file setting that may be unset
OptionalPath = Annotated[Path | None, BeforeValidator(_none_if_blank)]


def _check_tariff_categories(value: dict[str, str]) -> dict[str, str]:
    """Keys of ``MW_DEFAULT_TARIFF_PLANS`` are tariff categories.

    >>> _check_tariff_categories({"household": "x"})
    Traceback (most recent call last):
    ...
    ValueError: 'household' is not a tariff category (residential, commercial, industrial)
    """
    for key in value:
        if key not in ("residential", "commercial", "industrial"):
            raise ValueError(f"{key!r} is not a tariff category (residential, commercial, industrial)")
    return value


def _check_zone(name: str) -> str:
    """An IANA time zone name.

    >>> _check_zone("Asia/Shanghai")
    'Asia/Shanghai'
    >>> _check_zone("Mars/Base")
    Traceback (most recent call last):
    ...
    ValueError: 'Mars/Base' is not a known time zone (an IANA name such as Asia/Shanghai)
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"{name!r} is not a known time zone (an IANA name such as Asia/Shanghai)") from e
    return name


def _port_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"port {text!r} is not a number")
    if not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text} is not in 1-65535")
    return int(text)


def check_redis_url(value: str) -> str:
    """Check a Redis URL (``redis://``, ``rediss://`` or ``unix://``; port 1-65535).

    >>> check_redis_url("redis://127.0.0.1:70000/0")
    Traceback (most recent call last):
    ...
    ValueError: port 70000 is not in 1-65535
    """
    u = urlparse(value)
    if u.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://host:port/db (or rediss://, unix://)")
    if u.scheme != "unix":
        if not u.hostname:
            raise ValueError("no host in the URL")
        netloc_port = u.netloc.rpartition("@")[2]
        if not netloc_port.endswith("]") and ":" in netloc_port:
            _port_number(netloc_port.rpartition(":")[2])
    return value


def check_optional_host_ports(value: str) -> str:
    """Like :func:`check_host_ports`, but empty means "not used" (e.g. no Redis Sentinels).

    >>> check_optional_host_ports("")
    ''
    """
    return check_host_ports(value) if value.strip() else ""


def read_secret_file(path: str, variable: str) -> str:
    """The secret in the file ``path`` (one trailing newline dropped), for ``MW_<NAME>_FILE``.

    >>> read_secret_file("/nonexistent/pw", "MW_REDIS_PASSWORD_FILE")
    Traceback (most recent call last):
    ...
    ValueError: MW_REDIS_PASSWORD_FILE: cannot read '/nonexistent/pw' (No such file or directory)
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path!r} ({exc.strerror or exc})") from None
    return text.removesuffix("\n").removesuffix("\r")


#: secrets that may also come from a file: ``MW_<NAME>_FILE`` (Kubernetes/compose secrets, systemd
#: credentials) instead of ``MW_<NAME>``; setting both is an error
SECRET_FILES = {
    "kafka_sasl_password": "kafka_sasl_password_file",
    "redis_password": "redis_password_file",
    "redis_sentinel_password": "redis_sentinel_password_file",
    "sms_http_auth_header": "sms_http_auth_header_file",
    "sms_inbound_secret": "sms_inbound_secret_file",
}

Port = Annotated[int, Field(ge=1, le=65535)]
PortOrOff = Annotated[int, Field(ge=0, le=65535)]  # 0 = off


def settings_error(exc: Exception) -> str:
    """One line naming the ``MW_`` variable(s) of a settings ``ValidationError`` (secrets hidden)."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        loc = err.get("loc")
        if not loc:  # a check across settings (_check_connections): its message names them
            parts.append(msg)
            continue
        name = f"MW_{str(loc[0]).upper()}"
        given = err.get("input")
        secret = any(word in name.lower() for word in ("secret", "auth", "password"))
        if isinstance(given, str | int | float) and not secret:
            parts.append(f"{name}={hide_userinfo(str(given))[:80]!r}: {hide_userinfo(msg)}")
        else:
            parts.append(f"{name}: {hide_userinfo(msg)}")
    return "; ".join(parts)


def hide_userinfo(text: str) -> str:
    """``text`` with the user and password of any URL in it replaced by ``***``.

    >>> hide_userinfo("redis://:hunter2@r1:6379/0 and rediss://mw:pw@r2:6380")
    'redis://***@r1:6379/0 and rediss://***@r2:6380'
    """
    return re.sub(r"://[^/@\s]*@", "://***@", text)


class SegmentPolicy(BaseModel):
    """How the notifier treats one segment (MW_NOTIFIER_SEGMENT_POLICIES, JSON)."""

    sms: Literal["auto", "after_manager", "never"] = "auto"
    sms_delay_minutes: int = Field(default=0, ge=0)  # "manager first": SMS waits this long
    digest: bool = True  # may this segment's manager pushes be collapsed into the hourly digest


class Settings(BaseSettings):
    """All of meterwatch's settings (prefix ``MW_``)."""

    model_config = SettingsConfigDict(
        env_prefix="MW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- platform (CONTRACTS.md) -------------------------------------------------
    kafka_bootstrap: Annotated[str, AfterValidator(check_host_ports)] = "127.0.0.1:9092"
    redis_url: Annotated[str, AfterValidator(check_redis_url)] = "redis://127.0.0.1:6379/0"
    data_dir: Path = Field(default_factory=_default_data_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    kafka_version: str = "4.1.1"
    kafka_controller_port: Port = 9093
    redis_prefix: str = "mw:"
    kafka_jvm_opts: str = "-Xms256m -Xmx1g"  # heap of the local dev broker (small shared machines)
    stack_timeout_s: float = 120.0  # how long `meterwatch dev up` waits for Kafka to answer
    kafka_cds: bool = True  # class-data sharing archive for a ~2x faster local broker start
    # the full London data for eval/ and bench/ (tests use the sample in data/sample); None: ../shared/data
    shared_data: Path | None = None
    log_repeat_interval_s: float = 30.0  # one log line per cause (warnings, errors) per interval; 0 = off

    # --- secured connections and failover (docs/deployment.md, "Secured connections") ---
    # Kafka: every client (worker, ingest, registry, notifier, publishers, topic admin)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_sasl_password_file: str = ""  # the password from this file (a mounted secret)
    kafka_ssl_cafile: str = ""  # PEM CA bundle that signed the brokers' certificates ("": system store)
    kafka_ssl_certfile: str = ""  # client certificate (PEM) for mutual TLS; optional
    kafka_ssl_keyfile: str = ""  # its private key (PEM); optional when the certfile holds it
    kafka_ssl_check_hostname: bool = True
    # Redis: every client (worker read model, API, notifier, tokens); TLS with a rediss:// URL
    redis_username: str = ""  # ACL user ("": the default user, password only)
    redis_password: SecretStr = SecretStr("")
    redis_password_file: str = ""
    redis_ssl_cafile: str = ""
    redis_ssl_certfile: str = ""  # client certificate, when the server asks for one (tls-auth-clients)
    redis_ssl_keyfile: str = ""
    redis_ssl_check_hostname: bool = True
    # Sentinel: the master of MW_REDIS_SENTINEL_SERVICE is found through these (failover); the
    # db number and TLS (rediss://) still come from MW_REDIS_URL, its host:port is then unused
    redis_sentinels: Annotated[str, AfterValidator(check_optional_host_ports)] = ""
    redis_sentinel_service: str = "meterwatch"
    redis_sentinel_password: SecretStr = SecretStr("")  # the sentinels' own requirepass, if any
    redis_sentinel_password_file: str = ""
    # replication of every topic meterwatch creates (and of Faust's); 0 = the broker's default ISR
    topic_replication: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int = Field(default=0, ge=0)

    # --- topics (default names; configurable) -------------------------------------
    topic_readings: str = "meter-readings"
    topic_customers: str = "customers"
    topic_dlq: str = "meter-readings.dlq"
    topic_alerts: str = "alerts"
    topic_history: str = "meterwatch-history"
    topic_features: str = "meterwatch-segment-features"
    topic_segments: str = "meterwatch-segment-assignments"
    topic_weather: str = "weather"  # daily mean temperatures per region (key: region; docs/weather.md)
    readings_partitions: int = 4
    customers_partitions: int = 4
    alerts_partitions: int = 4
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000
    changelog_retention_ms: int = -1
    weather_retention_ms: int = 400 * 24 * 3600 * 1000  # a year and more of days per region

    # --- worker (stream/) -----------------------------------------------------------
    app_id: str = "meterwatch"
    worker_web_port: Port = 6066
    worker_metrics_port: PortOrOff = 9102  # 0 = no metrics endpoint
    unknown_meter_policy: Literal["wait", "dlq"] = "wait"
    unknown_meter_wait_s: float = 3600.0
    late_window_days: int = 7
    readmodel_flush_ms: int = 200
    max_segments: int = 7
    rules_file: OptionalPath = None  # JSON of baselines.rules.RulesConfig (per tariff / segment thresholds)
    tariffs_file: OptionalPath = None  # JSON tariff catalogue replacing the shipped one (docs/money.md)
    # the plan of a customer whose registry record names none, per tariff category (docs/money.md),
    # e.g. {"residential": "uk-london-standard"}; every id must be in the catalogue
    default_tariff_plans: Annotated[dict[str, str], AfterValidator(_check_tariff_categories)] = Field(
        default_factory=dict
    )
    worker_metrics_host: str = "127.0.0.1"  # bind address of the worker's /healthz and /metrics
    # plausibility of readings (docs/stream.md, "Dead letters"): a reading outside these bounds is
    # dead-lettered with a named reason instead of being booked
    reading_max_future_s: float = Field(default=86400.0, ge=0)  # clock-skew allowance past "now"
    reading_min_ts: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # earliest ts accepted
    reading_max_age_days: float = Field(default=0.0, ge=0)  # 0: no age limit (replays of old data)
    # the meter's rating: an interval above max_kw x its hours is implausible. Per customer: the
    # registry's optional `max_kw`; else per tariff; else reading_max_kw
    reading_max_kw: float = Field(default=100.0, gt=0)
    reading_max_kw_by_tariff: dict[str, float] = Field(
        default_factory=lambda: {"commercial": 1000.0, "industrial": 20000.0}
    )

    # --- HTTP services --------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: Port = 8000
    notifier_host: str = "127.0.0.1"
    notifier_port: Port = 8001
    api_rate_limit_per_min: int = 600
    api_max_body_bytes: int = 64 * 1024  # request bodies over this are refused with 413
    notifier_rate_limit_per_min: int = 600  # requests per token and UTC minute (all notifier replicas)
    notifier_max_body_bytes: int = 256 * 1024  # request bodies over this are refused with 413
    token_default_ttl_days: int = 365
    api_token_cache_s: float = 5.0  # verified tokens cached in-process; bounds revocation delay
    api_ready_max_staleness_s: float = 60.0  # /readyz: read-model heartbeat must be newer than this
    # the workbench web pages (api/web, docs/workbench.md)
    web_session_secret: SecretStr = SecretStr("")  # cookie-signing key; empty: generated once, kept in Redis
    web_session_ttl_s: int = Field(default=8 * 3600, ge=60)  # a sign-in lasts this long
    web_cookie_secure: bool = False  # mark cookies Secure even on plain http (always on https requests)
    web_sse_max_streams: int = Field(default=200, ge=1)  # live-update streams per API process

    # --- notifier: channels -----------------------------------------------------------
    sms_provider: Literal["console", "http"] = "console"
    sms_http_url: str = ""
    sms_http_auth_header: SecretStr = SecretStr("")
    sms_http_body_template: str = '{"to": "{phone}", "text": "{text}", "reference": "{notification_id}"}'
    sms_http_status_url: str = ""  # GET, with {notification_id}: what the gateway knows of a message
    sms_status_recheck_s: float = 10.0  # after an unknown outcome (timeout), ask the gateway this much later
    sms_status_max_checks: int = 5  # failed status queries before resending anyway (a possible duplicate)
    push_webhook_url: str = ""
    sms_timeout_s: float = 5.0
    delivery_max_attempts: int = 5
    delivery_backoff_base_s: float = 0.5
    delivery_backoff_max_s: float = 30.0

    # --- notifier: moderation ----------------------------------------------------------
    sms_min_days_between: int = 7
    quiet_hours_start: int = 21
    quiet_hours_end: int = 8
    manager_digest_threshold_per_hour: int = 10
    # the manager's daily digest of manager-only alerts (docs/notifier.md, baselines.digest)
    manager_digest_daily: bool = True  # false: manager-only alerts are pushed one by one, as before
    manager_digest_actionable_per_day: int = Field(3, ge=0)  # pushed on their own per manager and day
    manager_digest_min_money: float = Field(0.0, ge=0)  # money at stake an actionable alert needs
    manager_digest_min_excess_kwh: float = Field(200.0, ge=0)  # kWh at stake (alerts without money)
    manager_digest_fold_rules: list[str] = Field(default_factory=lambda: ["same_period_reached"])
    manager_digest_timezone: Annotated[str, AfterValidator(_check_zone)] = (
        "UTC"  # the digest day's time zone (an IANA name)
    )
    manager_digest_grace_s: int = Field(300, ge=0)  # the digest goes out this long after the day ends
    manager_digest_keep_days: int = Field(90, ge=1)  # digests and their items stay queryable this long
    sms_max_per_cycle: int = 1  # SMS per customer per billing cycle (alert.cycle.start)
    # rented homes (docs/notifier.md): alerts of these rules also text the landlord ([] = never)
    landlord_sms_rules: list[str] = Field(default_factory=lambda: ["sustained_drop"])
    landlord_sms_min_days_between: int = Field(30, ge=0)  # days between two SMS to one landlord
    sms_inbound_secret: SecretStr = SecretStr("")  # X-MW-Inbound-Secret of the gateway callback
    sms_signature: str = ""  # prepended to every SMS, e.g. "【某供电公司】"
    notifier_hotline: str = "95598"  # number to call when the manager has no phone on file
    push_timeout_s: float = 5.0
    notifier_group_id: str = "meterwatch-notifier"
    notifier_consume: bool = True  # run the Kafka consumer in the app's lifespan
    notifier_poll_interval_s: float = 0.1  # dispatcher poll of the due queue
    notifier_dispatch_batch: int = 200
    notifier_dispatch_concurrency: int = 32
    notifier_lease_s: float = 60.0  # a claimed notification is retaken after this (crashed replica)
    notifier_inbox_max: int = 500
    notifier_alert_dedupe_days: int = 400
    notifier_unassigned_manager: str = "unassigned"
    notifier_breaker_threshold: int = 5  # consecutive gateway errors that open the breaker (0 = off)
    notifier_breaker_cooldown_s: float = 5.0  # first probe after this; doubles up to 60 s while down
    notifier_redis_max_connections: int = 64  # HTTP routes + consumer (the dispatcher has its own)
    notifier_sse_max_streams: int = 200  # live inbox streams per replica (503 beyond)
    notifier_sse_max_per_token: int = 10  # live inbox streams per token (429 beyond)
    notifier_kafka_probe_s: float = 5.0  # broker probe of the consumer (readiness follows it)
    notifier_topic_recheck_s: float = 30.0  # re-check of an alerts topic that could not be used
    # per-segment policy, keyed by segment label (case-insensitive) or id; "*" = default
    notifier_segment_policies: dict[str, SegmentPolicy] = Field(
        default_factory=lambda: {
            "premium": SegmentPolicy(sms_delay_minutes=60, digest=False),
            "sensitive": SegmentPolicy(sms="after_manager"),
        }
    )

    sms_http_auth_header_file: str = ""  # MW_SMS_HTTP_AUTH_HEADER from a file
    sms_inbound_secret_file: str = ""  # MW_SMS_INBOUND_SECRET from a file

    @model_validator(mode="after")
    def _check_connections(self) -> Settings:
        """Secrets from their files, and the security settings checked together (one line each)."""
        for secret, file_field in SECRET_FILES.items():
            path = getattr(self, file_field)
            if not path:
                continue
            value = read_secret_file(path, f"MW_{file_field.upper()}")
            if getattr(self, secret).get_secret_value() not in ("", value):
                raise ValueError(f"set MW_{secret.upper()} or MW_{file_field.upper()}, not both")
            setattr(self, secret, SecretStr(value))
        problems = _kafka_security_problems(self) + _redis_security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- derived ---------------------------------------------------------------------
    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def redis_host(self) -> str:
        return urlparse(self.redis_url).hostname or "127.0.0.1"

    @property
    def redis_port(self) -> int:
        return urlparse(self.redis_url).port or 6379

    @property
    def stack_dir(self) -> Path:
        """Where the local dev stack keeps its data and logs."""
        return self.data_dir / "stack"

    @property
    def tables_dir(self) -> Path:
        """Where the worker keeps its RocksDB tables."""
        return self.data_dir / "tables"


def _files_missing(settings: Settings, fields: tuple[str, ...]) -> list[str]:
    return [
        f"MW_{f.upper()}: no such file {getattr(settings, f)!r}"
        for f in fields
        if getattr(settings, f) and not Path(getattr(settings, f)).is_file()
    ]


def _kafka_security_problems(s: Settings) -> list[str]:
    protocol = s.kafka_security_protocol
    out = _files_missing(s, ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"))
    if protocol.startswith("SASL_") and not (
        s.kafka_sasl_username and s.kafka_sasl_password.get_secret_value()
    ):
        out.append(
            f"MW_KAFKA_SECURITY_PROTOCOL={protocol} needs MW_KAFKA_SASL_USERNAME and "
            "MW_KAFKA_SASL_PASSWORD (or MW_KAFKA_SASL_PASSWORD_FILE)"
        )
    tls_files = [f for f in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile") if getattr(s, f)]
    if tls_files and not protocol.endswith("SSL"):
        out.append(
            f"MW_{tls_files[0].upper()} is set but MW_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
            "(use SSL or SASL_SSL)"
        )
    if s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        out.append("MW_KAFKA_SSL_KEYFILE is set without MW_KAFKA_SSL_CERTFILE")
    return out


def _redis_security_problems(s: Settings) -> list[str]:
    out = _files_missing(s, ("redis_ssl_cafile", "redis_ssl_certfile", "redis_ssl_keyfile"))
    tls_files = [f for f in ("redis_ssl_cafile", "redis_ssl_certfile", "redis_ssl_keyfile") if getattr(s, f)]
    if tls_files and not s.redis_url.startswith("rediss://"):
        out.append(f"MW_{tls_files[0].upper()} is set but MW_REDIS_URL is not a rediss:// (TLS) URL")
    if s.redis_ssl_keyfile and not s.redis_ssl_certfile:
        out.append("MW_REDIS_SSL_KEYFILE is set without MW_REDIS_SSL_CERTFILE")
    if s.redis_username and not s.redis_password.get_secret_value():
        out.append("MW_REDIS_USERNAME is set without MW_REDIS_PASSWORD (or MW_REDIS_PASSWORD_FILE)")
    if s.redis_sentinels and s.redis_url.startswith("unix://"):
        out.append("MW_REDIS_SENTINELS cannot be used with a unix:// MW_REDIS_URL")
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (FastAPI dependencies override this in tests)."""
    return Settings()
