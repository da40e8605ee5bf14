"""Options shared by several commands, spelled the same everywhere.

* ``--progress / --no-progress``: a progress bar on stderr; by default only when stderr
  is a terminal (a log file or CI output gets no bar);
* ``--log-level LEVEL`` (``debug``, ``info``, ``warning``, ``error``; any case); the
  old spelling ``--loglevel`` is still accepted, hidden from ``--help``.

:func:`unify_spellings` gives a command registered elsewhere with the old spelling the
canonical one too (and hides the old), so that every command answers to both.

>>> p = argparse.ArgumentParser(prog="x")
>>> add_log_level_option(p)
>>> p.parse_args(["--loglevel", "DEBUG"]).log_level, p.parse_args([]).log_level
('debug', 'info')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

LOG_LEVELS = ("debug", "info", "warning", "error")

#: old spelling -> canonical spelling
ALIASES = {"--loglevel": "--log-level"}


def log_level(text: str) -> str:
    """A log level name, lower case (argparse type).

    >>> log_level("WARNING")
    'warning'
    """
    value = text.strip().lower()
    if value not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}: {text}")
    return value


def add_log_level_option(p: argparse.ArgumentParser, default: str = "info") -> None:
    p.add_argument(
        "--log-level",
        type=log_level,
        default=default,
        metavar="LEVEL",
        help=f"{', '.join(LOG_LEVELS)} (default {default})",
    )
    p.add_argument("--loglevel", dest="log_level", type=log_level, help=argparse.SUPPRESS)


def add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )


def progress_enabled(flag: bool | None) -> bool:
    """The ``--progress`` choice, or (not given) whether stderr is a terminal."""
    if flag is not None:
        return flag
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def unify_spellings(parsers: Iterable[argparse.ArgumentParser]) -> None:
    """Give every parser that only knows an old spelling (``--loglevel``) the canonical one too.

    The canonical name is added as a visible alias of the same action and the old one is
    hidden; the value keeps the command's own ``dest``.

    >>> p = argparse.ArgumentParser(prog="x")
    >>> _ = p.add_argument("--loglevel", default="info")
    >>> unify_spellings([p])
    >>> p.parse_args(["--log-level", "debug"]).loglevel, "--loglevel" in p.format_help()
    ('debug', False)
    """
    for parser in parsers:
        # argparse keeps a parser's options in private tables; reading them is the only way to
        # learn what a sub-command registered elsewhere (stream_cmds.py) already has
        known = parser._option_string_actions
        for old, new in ALIASES.items():
            action = known.get(old)
            if action is None or new in known:
                continue
            alias = parser.add_argument(
                new, dest=action.dest, default=action.default, choices=action.choices, metavar="LEVEL"
            )
            alias.type, alias.help = action.type, action.help
            action.help = argparse.SUPPRESS
