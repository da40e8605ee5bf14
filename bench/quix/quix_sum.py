"""The Quix Streams reference of the stream benchmark (run by ``bench/bench_stream.py --quix``
in the venv of ``bench/quix/requirements.txt``; prints figures, asserts nothing).

    python bench/quix/quix_sum.py --bootstrap 127.0.0.1:9092 --topic T --n 100000 --state-dir D

A Quix Streams application reads the readings topic from the start in a fresh consumer group
and keeps, per message key (the meter), the running kWh sum in its RocksDB state with a
changelog topic (as meterwatch keeps its tables), checkpointed every ``--commit-interval``
seconds (0.5: the worker delivers and commits per batch, and Quix's default of 5 s would
leave a short run's state in its in-memory cache, never written within the timed window). It
is the trivial job a user could write instead: no cycles, rules, alerts or read model. Timed
from the first processed message to the ``--n``-th; prints ``RESULT <readings/s> <seconds>``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from quixstreams import Application
from quixstreams.state import State


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--commit-interval", type=float, default=0.5, help="seconds between checkpoints")
    args = ap.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"mw-bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        # a checkpoint (RocksDB write + changelog + offsets) every 0.5 s, within the timed
        # window: the default 5 s would leave a short run's state in Quix's in-memory cache
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, value_deserializer="json", key_deserializer="bytes")
    seen = {"n": 0, "t0": 0.0, "t1": 0.0}

    def add(value: dict[str, Any], state: State) -> None:
        if seen["n"] == 0:
            seen["t0"] = time.perf_counter()
        state.set("kwh", state.get("kwh", 0.0) + float(value["kwh"]))
        seen["n"] += 1
        if seen["n"] >= args.n:
            seen["t1"] = time.perf_counter()
            app.stop()

    sdf = app.dataframe(topic)
    sdf.update(add, stateful=True)
    app.run()
    if not seen["t1"]:
        print(f"RESULT 0 0 (only {seen['n']} of {args.n} messages)")
        return 1
    el = seen["t1"] - seen["t0"]
    print(f"RESULT {args.n / el:.1f} {el:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
