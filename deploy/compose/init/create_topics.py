"""Create meterwatch's topics on a multi-broker cluster, replicated (compose one-shot).

The same topic list as the services use (``meterwatch.topics.topic_specs`` and
the worker's ``stream.app.internal_topic_specs``, sized by the MW_ settings),
with ``TOPIC_REPLICATION`` replicas (default 3) and ``min.insync.replicas`` =
``TOPIC_MIN_INSYNC`` (default 2), so that every topic survives one broker down
and the producers' ``acks=all`` means two copies. Existing topics are left as
they are (idempotent). Exit status 0 when every topic exists.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from meterwatch.settings import Settings
from meterwatch.topics import create_topics, describe_topics, topic_specs
from stream.app import internal_topic_specs


async def main() -> int:
    settings = Settings()
    replication = int(os.environ.get("TOPIC_REPLICATION", "3"))
    min_insync = os.environ.get("TOPIC_MIN_INSYNC", "2")
    specs = [
        spec.model_copy(
            update={
                "replication": replication,
                "configs": {**spec.configs, "min.insync.replicas": min_insync},
            }
        )
        for spec in topic_specs(settings) + internal_topic_specs(settings)
    ]
    deadline = time.monotonic() + 180
    while True:
        try:
            created = await create_topics(settings, specs, timeout_s=60)
            break
        except Exception as exc:  # brokers still starting or electing: retry
            if time.monotonic() > deadline:
                print(f"create_topics: giving up: {exc}", file=sys.stderr)
                return 1
            print(f"create_topics: {type(exc).__name__}: {exc}; retrying", file=sys.stderr)
            await asyncio.sleep(2)
    info = await describe_topics(settings, [s.name for s in specs])
    for spec in specs:
        got = info.get(spec.name)
        state = "created" if spec.name in created else "exists"
        parts = got.partitions if got else "?"
        isr = got.configs.get("min.insync.replicas", "?") if got else "?"
        print(f"topic {spec.name}: {state}, {parts} partitions, min.insync.replicas={isr}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
