"""systemd units for bare-metal installs: `systemd-analyze verify` finds nothing to say
about them (unknown keys, bad values, missing targets), and `systemd-analyze security`
rates their sandboxing "OK" (exposure at most 2.0 of 10). Both run offline against a
scratch root holding the units, the distribution's own units and a stub executable.
systemd-analyze is Debian's `systemd` package; missing, the test fails (never skips)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNITS = ROOT / "deploy" / "systemd"
CHECKED = ["meterwatch-api.service", "meterwatch-notifier.service", "meterwatch-worker@w1.service"]


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is not installed: apt-get install -y systemd", pytrace=False)
    return path


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    for unit in UNITS.glob("meterwatch*"):
        if unit.suffix in (".service", ".target"):
            shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    stub = root / "opt" / "meterwatch" / "bin" / "meterwatch"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    system = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None
    )
    assert system is not None, "no distribution units (sysinit.target, ...) on this machine"
    shutil.copytree(system, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_analyze(), *args, f"--root={root}"], capture_output=True, text=True, timeout=120, check=False
    )


def test_units_verify_cleanly(scratch_root: Path) -> None:
    proc = _run(scratch_root, "verify", "--man=no", *CHECKED, "meterwatch.target")
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_verify_would_catch_a_typo(scratch_root: Path) -> None:
    unit = scratch_root / "etc" / "systemd" / "system" / "meterwatch-api.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    proc = _run(scratch_root, "verify", "--man=no", "meterwatch-api.service")
    assert "Unknown key 'ProtectSystm'" in proc.stderr


@pytest.mark.parametrize("unit", CHECKED)
def test_sandboxing_is_rated_ok(scratch_root: Path, unit: str) -> None:
    proc = _run(scratch_root, "security", "--offline=yes", "--threshold=20", unit)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_units_are_sandboxed_and_use_the_env_file() -> None:
    for name in ("meterwatch-api.service", "meterwatch-notifier.service", "meterwatch-worker@.service"):
        text = (UNITS / name).read_text()
        for line in (
            "User=meterwatch",
            "EnvironmentFile=/etc/meterwatch/meterwatch.env",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
        ):
            assert f"\n{line}\n" in text, (name, line)
        assert "ReadWritePaths=/var/lib/meterwatch" in text, name
    assert "--instance %i" in (UNITS / "meterwatch-worker@.service").read_text()
