"""The local development stack: a real single-node Apache Kafka (KRaft) and a Redis.

Everything is driven by :class:`meterwatch.settings.Settings` (``MW_`` variables):

* Kafka ``settings.kafka_version`` is resolved from Maven Central with the small
  pom in ``deploy/kafka/pom.xml`` and cached under ``settings.cache_dir``
  (``kafka-<version>/libs``, marked complete by a ``.complete`` file, so a warm
  start never calls Maven);
* the broker's ``server.properties`` and Redis's ``redis.conf`` are rendered from
  the templates in ``deploy/`` into ``settings.stack_dir`` (data, logs, pid files);
* both run as background daemons in their own session; ``down`` stops them with
  SIGTERM, waits, then SIGKILL, and checks that their ports are closed.

``up`` is idempotent: a service whose recorded pid is alive and whose port
answers is reused; a port answered by a process this stack did not start is
reported as *external* and reused as well (never stopped by ``down``).

>>> from meterwatch.settings import Settings
>>> s = Settings(data_dir="/tmp/mw-doc", kafka_bootstrap="127.0.0.1:19092")
>>> p = StackPaths.of(s)
>>> p.kafka_pidfile.name, p.redis_pidfile.name
('kafka.pid', 'redis.pid')
>>> "listeners=PLAINTEXT://127.0.0.1:19092" in render_kafka_config(s)
True
"""

from __future__ import annotations

from meterwatch.cli.devstack.kafka import (
    KAFKA_MAIN,
    STORAGE_TOOL,
    cds_archive,
    ensure_kafka_jars,
    java_major,
    kafka_cached,
    kafka_home,
    kafka_libs,
    parse_java_version,
    start_kafka,
)
from meterwatch.cli.devstack.paths import (
    DEPLOY_DIR,
    ServiceStatus,
    StackError,
    StackPaths,
    StackStatus,
    render_kafka_config,
    render_redis_config,
)
from meterwatch.cli.devstack.procs import port_open, run_async
from meterwatch.cli.devstack.redis import ensure_redis_server, start_redis
from meterwatch.cli.devstack.stack import down, status, up

__all__ = [
    "DEPLOY_DIR",
    "KAFKA_MAIN",
    "STORAGE_TOOL",
    "ServiceStatus",
    "StackError",
    "StackPaths",
    "StackStatus",
    "cds_archive",
    "down",
    "ensure_kafka_jars",
    "ensure_redis_server",
    "java_major",
    "kafka_cached",
    "kafka_home",
    "kafka_libs",
    "parse_java_version",
    "port_open",
    "render_kafka_config",
    "render_redis_config",
    "run_async",
    "start_kafka",
    "start_redis",
    "status",
    "up",
]
