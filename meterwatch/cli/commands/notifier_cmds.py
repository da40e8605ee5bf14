"""`meterwatch notifier`: run the notifier service (FastAPI + Kafka consumer + dispatcher)."""

from __future__ import annotations

import argparse

from meterwatch.cli.options import add_log_level_option


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "notifier",
        help="run the notifier (consumes alerts, moderates, sends SMS and manager pushes)",
        description="Run the notifier: consumes the alerts topic, takes POST /v1/alerts, moderates, "
        "and sends customer SMS and account-manager pushes. Settings: MW_* (see the README).",
    )
    p.add_argument("--host", default=None, help="listen address (default MW_NOTIFIER_HOST)")
    p.add_argument("--port", type=int, default=None, help="listen port (default MW_NOTIFIER_PORT)")
    p.add_argument(
        "--no-consume", action="store_true", help="do not consume the alerts topic (HTTP ingest only)"
    )
    add_log_level_option(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from meterwatch.logs import setup_logging
    from meterwatch.settings import get_settings
    from notifier.app import create_app

    setup_logging(args.log_level.upper())
    s = get_settings()
    app = create_app(s, consume=False if args.no_consume else None)
    uvicorn.run(
        app,
        host=args.host or s.notifier_host,
        port=args.port if args.port is not None else s.notifier_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )
    return 0
