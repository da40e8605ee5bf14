"""The `meterwatch` console script.

Each area registers its own sub-commands in ``meterwatch/cli/commands/<area>.py``
(a ``register(subparsers)`` function); heavy imports happen inside the command.
Before any command runs, the ``MW_`` settings are checked: a bad value is one line
naming the variable (exit status 2), never a traceback. With secured connections
configured, a command that uses Kafka or Redis first checks that they accept its
credentials and certificates: a refusal is one line too (exit status 2), not a retry loop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from meterwatch import __version__
from meterwatch.cli.commands import (
    api_cmds,
    backtest_cmds,
    dev_cmds,
    notifier_cmds,
    sim_cmds,
    stream_cmds,
    weather_cmds,
)
from meterwatch.cli.options import unify_spellings

#: exit status of a command line or setting that cannot be used
USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterwatch",
        description="Streaming consumption-anomaly service for electric utilities.",
    )
    parser.add_argument("--version", action="version", version=f"meterwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (dev_cmds, backtest_cmds, stream_cmds, sim_cmds, api_cmds, notifier_cmds, weather_cmds):
        module.register(sub)
    unify_spellings(sub.choices.values())
    return parser


def check_settings() -> str | None:
    """The one-line problem with the ``MW_`` settings (environment, ``.env``), or None."""
    from pydantic import ValidationError

    from meterwatch.settings import Settings, settings_error

    try:
        Settings()
    except ValidationError as exc:
        return settings_error(exc)
    return None


#: the services each command uses: (Kafka, Redis)
_USES = {
    "worker": (True, True),
    "notifier": (True, True),
    "api": (True, True),  # Kafka: budget changes go to the customers topic
    "token": (False, True),
    "simulate": (True, False),
    "replay": (True, False),
    "bootstrap": (True, False),
}


def check_credentials(command: str) -> str | None:
    """The one-line refusal of our credentials by Kafka or Redis, or None (only when secured)."""
    from meterwatch.cli.devstack.procs import run_async
    from meterwatch.connections import CredentialsError, check_kafka, check_redis, security_configured
    from meterwatch.settings import Settings

    settings = Settings()
    kafka_secured, redis_secured = security_configured(settings)
    uses_kafka, uses_redis = _USES.get(command, (False, False))
    try:
        if uses_kafka and kafka_secured:
            run_async(lambda: check_kafka(settings))
        if uses_redis and redis_secured:
            check_redis(settings)
    except CredentialsError as exc:
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check_settings()
    if problem is not None:
        print(f"meterwatch {args.command}: bad setting: {problem}", file=sys.stderr)
        return USAGE_ERROR
    if not getattr(args, "out", None):  # `simulate --out FILE` writes a file, no Kafka
        refused = check_credentials(args.command)
        if refused is not None:
            print(f"meterwatch {args.command}: {refused}", file=sys.stderr)
            return USAGE_ERROR
    rc = args.func(args)
    return int(rc or 0)
