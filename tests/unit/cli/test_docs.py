"""docs/cli.md and docs/operations.md: their variables and commands exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from meterwatch.cli import build_parser
from meterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "docs" / "cli.md", ROOT / "docs" / "operations.md"]


def test_every_mw_variable_in_the_cli_docs_is_a_setting_or_a_script_variable() -> None:
    fields = {f.upper() for f in Settings.model_fields}
    scripts = "\n".join(f.read_text() for f in [*(ROOT / "deploy").glob("*.sh"), ROOT / ".ci" / "run"])
    for doc in DOCS:
        names = set(re.findall(r"MW_([A-Z0-9_]+)", doc.read_text()))
        assert names, doc
        assert sorted(n for n in names - fields if f"MW_{n}" not in scripts) == [], doc


def test_every_command_in_the_cli_reference_exists() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    text = (ROOT / "docs" / "cli.md").read_text()
    used = set(re.findall(r"^meterwatch ([a-z]+)", text, re.M))
    assert {
        "dev",
        "worker",
        "api",
        "notifier",
        "token",
        "simulate",
        "replay",
        "bootstrap",
        "backtest",
    } <= used
    assert used <= set(commands)
    for name, sub in commands.items():
        if name in ("dev", "token"):  # their options belong to their sub-actions
            continue
        for option in re.findall(rf"^meterwatch {name} .*$", text, re.M):
            for flag in re.findall(r"(--[a-z][a-z-]+)", option):
                assert flag in sub.format_help() or flag == "--as-fast-as-possible", (name, flag)
