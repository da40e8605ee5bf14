"""Where the local stack keeps things, its status models, and its rendered config files."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from meterwatch.settings import Settings

#: The repository's ``deploy/`` directory (the pom and the config templates).
DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"


class StackError(RuntimeError):
    """The local stack could not be set up; the message says what to do."""


class ServiceStatus(BaseModel):
    """One service of the stack as seen by ``status``."""

    name: str
    address: str
    pid: int | None
    running: bool  # the recorded pid is alive and is this service
    answering: bool  # the port accepts connections
    managed: bool  # started by this stack (so ``down`` stops it)
    log: str


class StackStatus(BaseModel):
    kafka: ServiceStatus
    redis: ServiceStatus
    topics: list[str] | None = None  # None when Kafka does not answer

    @property
    def up(self) -> bool:
        return self.kafka.answering and self.redis.answering


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps things (all under ``settings.stack_dir``)."""

    root: Path
    kafka_dir: Path
    kafka_data: Path
    kafka_config: Path
    kafka_pidfile: Path
    redis_dir: Path
    redis_config: Path
    redis_pidfile: Path
    logs: Path
    lock: Path

    @classmethod
    def of(cls, settings: Settings) -> StackPaths:
        root = settings.stack_dir
        return cls(
            root=root,
            kafka_dir=root / "kafka",
            kafka_data=root / "kafka" / "data",
            kafka_config=root / "kafka" / "server.properties",
            kafka_pidfile=root / "kafka.pid",
            redis_dir=root / "redis",
            redis_config=root / "redis" / "redis.conf",
            redis_pidfile=root / "redis.pid",
            logs=root / "logs",
            lock=root / ".lock",
        )

    @property
    def kafka_cds_pending(self) -> Path:
        return self.root / "kafka.cds-pending"

    @property
    def kafka_log(self) -> Path:
        return self.logs / "kafka" / "server.log"

    @property
    def kafka_stdout(self) -> Path:
        return self.logs / "kafka" / "kafka.out"

    @property
    def redis_log(self) -> Path:
        return self.logs / "redis.log"


def render_template(template: Path, **values: object) -> str:
    return string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})


def render_kafka_config(settings: Settings) -> str:
    paths = StackPaths.of(settings)
    return render_template(
        DEPLOY_DIR / "kafka" / "server.properties.tmpl",
        host=settings.kafka_host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dirs=paths.kafka_data,
    )


def render_redis_config(settings: Settings) -> str:
    paths = StackPaths.of(settings)
    return render_template(
        DEPLOY_DIR / "redis" / "redis.conf.tmpl",
        host=settings.redis_host,
        port=settings.redis_port,
        pidfile=paths.redis_dir / "redis-server.pid",
        logfile=paths.redis_log,
        dir=paths.redis_dir,
    )
