"""`meterwatch worker`: run the streaming pipeline (Faust agents, tables, read model)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worker",
        help="run a stream worker (readings -> baselines, alerts, segments, Redis read model)",
        description=(
            "Run one worker process of the streaming pipeline. Several processes with the same "
            "MW_APP_ID share the partitions; each needs its own --instance (its RocksDB directory) "
            "and metrics port."
        ),
    )
    p.add_argument(
        "--instance",
        default="w0",
        help="name of this worker process; its tables live in MW_DATA_DIR/tables/<instance> (default w0)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port of /metrics and /healthz on MW_WORKER_METRICS_HOST (default 127.0.0.1) "
        "(default MW_WORKER_METRICS_PORT; 0 = off)",
    )
    p.add_argument("--batch", type=int, default=2000, help="max events per processing batch (default 2000)")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for Kafka at start-up before giving up with exit code 69 "
        "(default: wait as long as it takes, one line every minute)",
    )
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    import re

    from meterwatch.settings import Settings

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.instance):
        raise SystemExit("--instance: use 1-64 letters, digits, '_', '.', '-'")
    if args.batch < 1:
        raise SystemExit("--batch must be >= 1")
    if args.wait is not None and args.wait < 0:
        raise SystemExit("--wait must be >= 0 seconds")
    import asyncio

    from stream.worker import Worker, run_worker, wait_for_kafka

    settings = Settings()
    # idempotent: CONTRACTS.md topics and the worker's own; with Kafka down: wait, one line
    if not asyncio.run(wait_for_kafka(settings, args.wait)):
        return 69  # EX_UNAVAILABLE
    worker = Worker(settings, instance=args.instance, metrics_port=args.metrics_port, batch_max=args.batch)
    return run_worker(worker, loglevel=args.loglevel)
