"""Entry point of the local Kafka image: apache/kafka's environment conventions.

Every ``KAFKA_*`` variable (except the JVM ones) becomes a broker property:
strip ``KAFKA_``, lower-case, ``___`` -> ``-``, ``__`` -> ``_``, ``_`` -> ``.``
(``KAFKA_NODE_ID=1`` -> ``node.id=1``). ``CLUSTER_ID`` formats the storage on
first start. Then the broker runs in the foreground (``exec``), logging to stdout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HOME = Path("/opt/kafka")
CONFIG = HOME / "config" / "server.properties"
JVM_VARS = {
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_VERSION",
}


def property_name(var: str) -> str:
    """
    >>> property_name("KAFKA_CONTROLLER_QUORUM_VOTERS"), property_name("KAFKA_LOG_DIRS")
    ('controller.quorum.voters', 'log.dirs')
    >>> property_name("KAFKA_SOME__ODD___NAME")
    'some_odd-name'
    """
    name = var[len("KAFKA_") :].lower()
    return (
        name.replace("___", "\0dash\0")
        .replace("__", "\0us\0")
        .replace("_", ".")
        .replace("\0dash\0", "-")
        .replace("\0us\0", "_")
    )


def render(env: dict[str, str]) -> str:
    props = {
        property_name(k): v
        for k, v in sorted(env.items())
        if k.startswith("KAFKA_") and k not in JVM_VARS and re.fullmatch(r"[A-Z0-9_]+", k)
    }
    props.setdefault("log.dirs", "/var/lib/kafka/data")
    return "".join(f"{k}={v}\n" for k, v in props.items())


def java(main: str, *args: str, heap: str) -> list[str]:
    env = os.environ
    return [
        "java",
        *heap.split(),
        *env.get("KAFKA_JVM_PERFORMANCE_OPTS", "-XX:+UseG1GC -XX:MaxGCPauseMillis=20").split(),
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={HOME / 'log4j2.xml'}",
        *env.get("KAFKA_OPTS", "").split(),
        "-cp",
        f"{HOME / 'libs'}/*",
        main,
        *args,
    ]


def main() -> int:
    env = dict(os.environ)
    CONFIG.write_text(render(env))
    log_dirs = next(
        (line.split("=", 1)[1] for line in CONFIG.read_text().splitlines() if line.startswith("log.dirs=")),
        "/var/lib/kafka/data",
    )
    if not (Path(log_dirs.split(",")[0]) / "meta.properties").exists():
        cluster_id = env.get("CLUSTER_ID")
        if not cluster_id:
            print("kafka-entrypoint: set CLUSTER_ID (e.g. from kafka-storage random-uuid)", file=sys.stderr)
            return 2
        fmt = java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(CONFIG), heap="-Xmx256m")
        proc = subprocess.run(fmt, check=False)  # noqa: S603 - fixed argv
        if proc.returncode != 0:
            return proc.returncode
    cmd = java("kafka.Kafka", str(CONFIG), heap=env.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m"))
    os.execvp(cmd[0], cmd)  # noqa: S606 - fixed argv
    return 1


if __name__ == "__main__":
    sys.exit(main())
