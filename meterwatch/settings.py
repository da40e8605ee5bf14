"""The one configuration module of meterwatch.

Every service and script reads its configuration here: environment variables
with the prefix ``MW_`` (or a ``.env`` file in the working directory). Names
listed in CONTRACTS.md are kept stable; the rest may grow.

>>> s = Settings(kafka_bootstrap="127.0.0.1:19092", redis_url="redis://127.0.0.1:16379/0")
>>> s.kafka_port, s.redis_port
(19092, 16379)
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "meterwatch"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "meterwatch"


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
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    data_dir: Path = Field(default_factory=_default_data_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    kafka_version: str = "4.1.1"
    kafka_controller_port: int = 9093
    redis_prefix: str = "mw:"
    kafka_jvm_opts: str = "-Xms256m -Xmx1g"  # heap of the local dev broker (small shared machines)
    stack_timeout_s: float = 120.0  # how long `meterwatch dev up` waits for Kafka to answer
    kafka_cds: bool = True  # class-data sharing archive for a ~2x faster local broker start

    # --- topics (default names; configurable) -------------------------------------
    topic_readings: str = "meter-readings"
    topic_customers: str = "customers"
    topic_dlq: str = "meter-readings.dlq"
    topic_alerts: str = "alerts"
    topic_history: str = "meterwatch-history"
    topic_features: str = "meterwatch-segment-features"
    topic_segments: str = "meterwatch-segment-assignments"
    readings_partitions: int = 4
    customers_partitions: int = 4
    alerts_partitions: int = 4
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000
    changelog_retention_ms: int = -1

    # --- worker (stream/) -----------------------------------------------------------
    app_id: str = "meterwatch"
    worker_web_port: int = 6066
    worker_metrics_port: int = 9102
    unknown_meter_policy: Literal["wait", "dlq"] = "wait"
    unknown_meter_wait_s: float = 3600.0
    late_window_days: int = 7
    readmodel_flush_ms: int = 200
    max_segments: int = 7
    rules_file: Path | None = None  # JSON of baselines.rules.RulesConfig (per tariff / segment thresholds)
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
    api_port: int = 8000
    notifier_host: str = "127.0.0.1"
    notifier_port: int = 8001
    api_rate_limit_per_min: int = 600
    token_default_ttl_days: int = 365
    api_token_cache_s: float = 5.0  # verified tokens cached in-process; bounds revocation delay
    api_ready_max_staleness_s: float = 60.0  # /readyz: read-model heartbeat must be newer than this

    # --- notifier: channels -----------------------------------------------------------
    sms_provider: Literal["console", "http"] = "console"
    sms_http_url: str = ""
    sms_http_auth_header: SecretStr = SecretStr("")
    sms_http_body_template: str = '{"to": "{phone}", "text": "{text}", "reference": "{notification_id}"}'
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
    sms_max_per_cycle: int = 1  # SMS per customer per billing cycle (alert.cycle.start)
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
    # per-segment policy, keyed by segment label (case-insensitive) or id; "*" = default
    notifier_segment_policies: dict[str, SegmentPolicy] = Field(
        default_factory=lambda: {
            "premium": SegmentPolicy(sms_delay_minutes=60, digest=False),
            "sensitive": SegmentPolicy(sms="after_manager"),
        }
    )

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (FastAPI dependencies override this in tests)."""
    return Settings()
