"""What the README promises and code can break: its commands and variables exist, the lock is complete."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

from meterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_every_mw_variable_in_readme_is_a_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r"`MW_([A-Z0-9_]+)`", readme))
    assert "KAFKA_BOOTSTRAP" in names and "REDIS_URL" in names
    fields = {f.upper() for f in Settings.model_fields}
    # the rest must be variables that the set-up scripts themselves read (e.g. MW_VENV, MW_DEMO_DAYS)
    scripts = "\n".join(f.read_text() for f in [*(ROOT / "deploy").glob("*.sh"), ROOT / ".ci" / "run"])
    assert sorted(n for n in names - fields if f"MW_{n}" not in scripts) == []


def test_readme_opens_with_the_two_commands_and_they_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash deploy/demo.sh", "bash deploy/test.sh"]
    for cmd in commands:
        assert (ROOT / cmd.split()[1]).is_file()
    assert "<!-- sections -->" in readme


def test_constraints_pin_every_dependency_at_the_installed_version() -> None:
    import tomllib

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, ver = line.partition("==")
            assert ver, f"not an exact pin: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = ver
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    missing, mismatched = [], []
    for raw in reqs:
        req = Requirement(raw)
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key not in pins:
            missing.append(req.name)
            continue
        assert req.specifier.contains(pins[key], prereleases=True), f"{raw} excludes the pinned {pins[key]}"
        try:
            if version(req.name) != pins[key]:
                mismatched.append(f"{req.name}: installed {version(req.name)}, locked {pins[key]}")
        except PackageNotFoundError:
            mismatched.append(f"{req.name}: not installed")
    assert missing == [], f"not in constraints.txt (run bash deploy/lock.sh): {missing}"
    assert mismatched == []


def test_platform_module_examples_run() -> None:
    import doctest

    import meterwatch.cli.devstack
    import meterwatch.topics

    for module in (meterwatch.cli.devstack, meterwatch.topics):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
