"""The `meterwatch` console script.

Each area registers its own sub-commands in ``meterwatch/cli/commands/<area>.py``
(a ``register(subparsers)`` function); heavy imports happen inside the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from meterwatch import __version__
from meterwatch.cli.commands import api_cmds, backtest_cmds, dev_cmds, notifier_cmds, sim_cmds, stream_cmds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterwatch",
        description="Streaming consumption-anomaly service for electric utilities.",
    )
    parser.add_argument("--version", action="version", version=f"meterwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (dev_cmds, backtest_cmds, stream_cmds, sim_cmds, api_cmds, notifier_cmds):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rc = args.func(args)
    return int(rc or 0)

