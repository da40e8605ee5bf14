"""Prometheus alert and recording rules: `promtool check rules`, the rules' unit tests
(`promtool test rules`), and `promtool check config` of the compose stack's configs.
promtool is Debian's `prometheus` package; a missing promtool fails (never skips)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "observability" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: apt-get install -y prometheus "
            "(then stop and disable the package's service: it would take port 9090)",
            pytrace=False,
        )
    return path


def _run(*args: str, cwd: Path = PROM) -> str:
    proc = subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def test_rules_are_valid() -> None:
    out = _run("check", "rules", "rules/meterwatch.rules.yml")
    assert "SUCCESS: 20 rules found" in out, out


@pytest.mark.parametrize("test_file", ["tests/meterwatch.test.yml", "tests/drift.test.yml"])
def test_rules_unit_tests(test_file: str) -> None:
    assert "SUCCESS" in _run("test", "rules", test_file)


def test_unit_tests_cover_every_alert() -> None:
    rules = (PROM / "rules" / "meterwatch.rules.yml").read_text()
    alerts = {
        line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")
    }
    tested = "".join((PROM / "tests" / f).read_text() for f in ("meterwatch.test.yml", "drift.test.yml"))
    assert alerts and {a for a in alerts if f"alertname: {a}" not in tested} == set()


@pytest.mark.parametrize("config", ["deploy/compose/prometheus.yml", "deploy/compose/local/prometheus.yml"])
def test_compose_prometheus_configs_are_valid(config: str, tmp_path: Path) -> None:
    # the configs name their token file and rule directory at the container's paths:
    # check a copy that points at this checkout
    text = (ROOT / config).read_text()
    token = tmp_path / "token"
    token.write_text("t\n")
    text = text.replace("/etc/prometheus/scrape-token/token", str(token))
    text = text.replace("/etc/prometheus/rules/*.yml", str(PROM / "rules" / "*.yml"))
    copy = tmp_path / "prometheus.yml"
    copy.write_text(text)
    out = _run("check", "config", str(copy), cwd=tmp_path)
    assert "SUCCESS: 1 rule files found" in out and "SUCCESS: 20 rules found" in out, out
