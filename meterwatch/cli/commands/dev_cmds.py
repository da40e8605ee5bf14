"""`meterwatch dev up|down|status`: the local stack (real Kafka + Redis on 127.0.0.1)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from meterwatch.cli.commands import cluster_cmds


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser(
        "dev",
        help="start, stop and show the local stack (Kafka + Redis on 127.0.0.1)",
        description="The local development stack: a real single-node Apache Kafka (KRaft) and a Redis "
        "on 127.0.0.1, configured by the MW_ variables, data and logs under MW_DATA_DIR/stack.",
    )
    dev_sub = dev.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    p_up = dev_sub.add_parser("up", help="start Kafka and Redis (idempotent) and create the topics")
    p_up.add_argument("--no-topics", action="store_true", help="do not create meterwatch's topics")
    _cluster_options(p_up)
    p_up.set_defaults(func=_up)
    p_down = dev_sub.add_parser("down", help="stop the services started by `dev up`")
    _cluster_options(p_down)
    p_down.set_defaults(func=_down)
    p_status = dev_sub.add_parser("status", help="show both services and the topics")
    _cluster_options(p_status)
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.add_argument(
        "--lag", action="store_true", help="also show how far each consumer group is behind, per topic"
    )
    p_status.set_defaults(func=_status)
    p_fetch = dev_sub.add_parser("fetch", help="only resolve and cache the Kafka jars (Maven Central)")
    p_fetch.set_defaults(func=_fetch)


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=1,
        help="1 (default): the single-node stack; 3: a local cluster of three KRaft nodes and a Redis "
        "primary + replica + 3 sentinels (docs/operations/cluster.md)",
    )
    p.add_argument(
        "--base-port",
        type=int,
        default=19092,
        help="with --brokers 3: brokers on BASE..BASE+2, controllers BASE+100.., Redis BASE+200/201, "
        "sentinels BASE+300.. (default 19092)",
    )


def _print_status(st: object) -> None:
    from meterwatch.cli.devstack import StackStatus

    assert isinstance(st, StackStatus)
    for svc in (st.kafka, st.redis):
        state = "up" if svc.answering else "down"
        who = f"pid {svc.pid}" if svc.running else ("external" if svc.answering else "not running")
        print(f"{svc.name:<6} {state:<5} {svc.address:<28} {who:<14} log: {svc.log}")
    if st.topics is not None:
        print(f"topics ({len(st.topics)}): {', '.join(st.topics) if st.topics else '-'}")


def _up(args: argparse.Namespace) -> int:
    from meterwatch.cli.devstack import StackError, StackPaths, up
    from meterwatch.settings import Settings, hide_userinfo

    settings = Settings()
    if args.brokers > 1:
        return cluster_cmds.up(settings, args)
    t0 = time.monotonic()
    try:
        st = up(settings, create_topics=not args.no_topics)
    except StackError as exc:
        print(f"meterwatch dev up: {exc}", file=sys.stderr)
        return 1
    _print_status(st)
    print(f"Kafka bootstrap: {settings.kafka_bootstrap}")
    print(f"Redis URL:       {hide_userinfo(settings.redis_url)}")
    print(f"data and logs:   {StackPaths.of(settings).root}  (ready in {time.monotonic() - t0:.1f} s)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from meterwatch.cli.devstack import down
    from meterwatch.settings import Settings

    if args.brokers > 1:
        return cluster_cmds.down(Settings(), args)
    st = down(Settings())
    _print_status(st)
    left = [s.name for s in (st.kafka, st.redis) if s.running]
    if left:
        print(f"meterwatch dev down: still running: {', '.join(left)}", file=sys.stderr)
        return 1
    external = [s.name for s in (st.kafka, st.redis) if s.answering]
    if external:
        print(f"note: {', '.join(external)} still answering but not started by this stack (left alone)")
    else:
        print("stack stopped; nothing left running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from meterwatch.cli.devstack import status
    from meterwatch.settings import Settings

    settings = Settings()
    if args.brokers > 1:
        return cluster_cmds.status(settings, args)
    st = status(settings)
    lags = _lags(settings) if args.lag and st.kafka.answering else None
    if args.json:
        doc = st.model_dump()
        if lags is not None:
            doc["consumer_lag"] = {g.group_id: g.by_topic() for g in lags}
        print(json.dumps(doc, indent=2))
    else:
        _print_status(st)
        if lags is not None:
            print(f"consumer groups ({len(lags)}):" if lags else "consumer groups: none")
            for g in lags:
                topics = ", ".join(f"{t} {n}" for t, n in sorted(g.by_topic().items())) or "no commits"
                print(f"  {g.group_id:<40} lag {g.total:>8}   ({topics})")
    return 0 if st.up else 3


def _lags(settings: object) -> list[Any] | None:
    from meterwatch.cli.devstack import run_async
    from meterwatch.settings import Settings
    from meterwatch.topics import consumer_lag

    assert isinstance(settings, Settings)
    try:
        return run_async(lambda: consumer_lag(settings))
    except Exception as exc:
        print(f"consumer lag unavailable: {exc}", file=sys.stderr)
        return None


def _fetch(args: argparse.Namespace) -> int:
    from meterwatch.cli.devstack import StackError, ensure_kafka_jars
    from meterwatch.settings import Settings

    try:
        libs = ensure_kafka_jars(Settings(), say=lambda line: print(line, file=sys.stderr, flush=True))
    except StackError as exc:
        print(f"meterwatch dev fetch: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka jars: {libs}")
    return 0
