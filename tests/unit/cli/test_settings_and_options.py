"""Bad MW_ settings: one line naming the variable, for every command; option names the same everywhere."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meterwatch.cli import build_parser

COMMANDS = [
    ["worker"],
    ["api"],
    ["notifier"],
    ["dev", "status"],
    ["dev", "up"],
    ["token", "list"],
    ["simulate", "--dry-run"],
    ["replay", "x.csv", "--dry-run"],
    ["bootstrap", "x.csv", "--dry-run"],
    ["backtest", "--readings", "x.csv", "--out", "o.jsonl"],
]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "meterwatch.cli", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_bad_settings_are_one_line_naming_the_variable(args: list[str], tmp_path: Path) -> None:
    env = {"MW_KAFKA_BOOTSTRAP": "127.0.0.1:99999", "MW_API_PORT": "abc", "MW_DATA_DIR": str(tmp_path)}
    proc = _run(args, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "MW_KAFKA_BOOTSTRAP" in lines[0] and "99999" in lines[0] and "MW_API_PORT" in lines[0]


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("MW_KAFKA_BOOTSTRAP", "127.0.0.1:99999", "not in 1-65535"),
        ("MW_KAFKA_BOOTSTRAP", "localhost", "not host:port"),
        ("MW_KAFKA_BOOTSTRAP", "a:9092,b:0", "not in 1-65535"),
        ("MW_API_PORT", "abc", "valid integer"),
        ("MW_NOTIFIER_PORT", "70000", "65535"),
        ("MW_REDIS_URL", "http://127.0.0.1:6379", "redis://"),
    ],
)
def test_each_bad_value_is_named(
    name: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meterwatch.cli import main

    for var in list(os.environ):
        if var.startswith("MW_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv(name, value)
    assert main(["dev", "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and name in err and said in err, err


def test_log_level_is_spelled_the_same_by_every_service() -> None:
    parser = build_parser()
    for command in ("worker", "api", "notifier"):
        for spelling in ("--log-level", "--loglevel"):
            args = parser.parse_args([command, spelling, "debug"])
            assert "debug" in (getattr(args, "log_level", None), getattr(args, "loglevel", None))
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub = subparsers.choices[command]
        text = sub.format_help()
        assert "--log-level" in text and "--loglevel" not in text, command  # the old spelling is hidden


def test_progress_is_spelled_the_same_by_every_publisher_and_the_backtest() -> None:
    parser = build_parser()
    for argv in (
        ["simulate"],
        ["replay", "f.csv"],
        ["bootstrap", "f.csv"],
        ["backtest", "--readings", "f", "--out", "o"],
    ):
        assert parser.parse_args([*argv, "--no-progress"]).progress is False
        assert parser.parse_args([*argv, "--progress"]).progress is True
        assert parser.parse_args(argv).progress is None  # default: only on a terminal
