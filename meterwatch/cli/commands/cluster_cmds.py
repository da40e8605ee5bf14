"""`meterwatch dev up|status|down --brokers 3`: the local cluster (meterwatch/cli/devstack/cluster.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _cluster(settings: Any, args: argparse.Namespace) -> Any:
    from meterwatch.cli.devstack.cluster import Cluster, ClusterLayout

    root = Path(settings.stack_dir) / "cluster"
    return Cluster(ClusterLayout.at(root, brokers=args.brokers, base_port=args.base_port), base=settings)


def _print(st: Any) -> None:
    for svc in st.nodes:
        state = "up" if svc.answering else "down"
        who = f"pid {svc.pid}" if svc.running else ("external" if svc.answering else "not running")
        print(f"{svc.name:<14} {state:<5} {svc.address:<22} {who:<14} log: {svc.log}")
    print(f"redis primary (per the sentinels): {st.primary or '-'}")
    if st.topics is not None:
        print(f"topics ({len(st.topics)}): {', '.join(st.topics) if st.topics else '-'}")


def _topics(settings: Any) -> list[str] | None:
    from meterwatch.cli.devstack import run_async
    from meterwatch.topics import list_topics

    try:
        return run_async(lambda: list_topics(settings))
    except Exception:
        return None


def up(settings: Any, args: argparse.Namespace) -> int:
    from meterwatch.cli.devstack import StackError, run_async
    from meterwatch.topics import ensure_topics

    cluster = _cluster(settings, args)
    t0 = time.monotonic()
    try:
        cluster.start()
        mw = cluster.layout.settings(settings)
        if not args.no_topics:
            run_async(lambda: ensure_topics(mw))
    except StackError as exc:
        print(f"meterwatch dev up --brokers {args.brokers}: {exc}", file=sys.stderr)
        return 1
    st = cluster.status()
    st.topics = _topics(mw)
    _print(st)
    print(f"data and logs: {cluster.layout.root}  (ready in {time.monotonic() - t0:.1f} s)")
    print("point meterwatch at the cluster with:")
    for line in cluster.layout.exports():
        print(f"  {line}")
    return 0


def status(settings: Any, args: argparse.Namespace) -> int:
    cluster = _cluster(settings, args)
    st = cluster.status()
    if any(n.answering for n in st.nodes if n.name.startswith("kafka")):
        st.topics = _topics(cluster.layout.settings(settings))
    if getattr(args, "json", False):
        print(json.dumps(st.model_dump(), indent=2))
    else:
        _print(st)
    return 0 if st.up else 3


def down(settings: Any, args: argparse.Namespace) -> int:
    cluster = _cluster(settings, args)
    stopped = cluster.stop()
    st = cluster.status()
    _print(st)
    left = [n.name for n in st.nodes if n.running]
    if left:
        print(f"meterwatch dev down: still running: {', '.join(left)}", file=sys.stderr)
        return 1
    print(f"cluster stopped ({len(stopped)} processes); nothing left running")
    return 0
