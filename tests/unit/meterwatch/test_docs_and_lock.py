"""What the docs promise and code can break.

The README opens with its two commands and they exist; every ``MW_*`` name in the
README and ``docs/`` is a setting (or a variable the scripts read); every setting is
in the configuration reference; every relative link in the docs points to a file (and
heading) that exists; the lock is complete.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

from meterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

# Pages written on other branches of issue #11 at the same time as the README; a link
# to one of them is accepted while the file is missing. Empty this set once they are merged.
PENDING_PAGES = {
    "docs/notifier.md",
    "docs/stream.md",
    "docs/segments.md",
    "docs/cli.md",
    "docs/operations.md",
}


def _doc_files() -> list[Path]:
    """README.md, CONTRIBUTING.md, docs/**/*.md and the READMEs of bench/ and eval/."""
    files = [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "bench" / "README.md",
        ROOT / "eval" / "README.md",
    ]
    return [f for f in files if f.is_file()] + sorted((ROOT / "docs").rglob("*.md"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _script_variables() -> set[str]:
    """``MW_*`` names that scripts read themselves (not settings), e.g. MW_VENV, MW_DEMO_DAYS."""
    shell = [*(ROOT / "deploy").glob("*.sh"), ROOT / ".ci" / "run"]
    names = {n for f in shell for n in re.findall(r"\bMW_([A-Z0-9_]+)", f.read_text())}
    env_read = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["']MW_([A-Z0-9_]+)["']""")
    for top in ("bench", "eval", "tests", "meterwatch", "baselines", "stream", "api", "notifier"):
        for f in (ROOT / top).rglob("*.py"):
            names |= set(env_read.findall(f.read_text()))
    return names


def _mw_names(text: str) -> set[str]:
    """Every ``MW_NAME`` in a text; ``MW_TOPIC_*`` (a family of settings) gives ``TOPIC_*``."""
    return {
        m.group(1) + ("*" if m.group(2) else "")
        for m in re.finditer(r"\bMW_([A-Z0-9_]*[A-Z0-9])(_\*)?", text)
    }


def test_every_mw_variable_in_the_docs_is_a_setting() -> None:
    fields = {f.upper() for f in Settings.model_fields}
    scripts = _script_variables()
    docs = {doc: _mw_names(doc.read_text()) for doc in _doc_files()}
    seen = set().union(*docs.values())
    assert {"KAFKA_BOOTSTRAP", "REDIS_URL", "SHARED_DATA"} <= seen  # the scan finds names at all
    unknown = []
    for doc, names in docs.items():
        for name in sorted(names):
            if name.endswith("*"):
                known = any(f.startswith(name[:-1] + "_") for f in fields)
            else:
                known = name in fields or name in scripts
            if not known:
                unknown.append(f"{_rel(doc)}: MW_{name}")
    why = "not a field of meterwatch.settings.Settings nor read by a script"
    assert not unknown, why + ":\n" + "\n".join(unknown)


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"MW_{f.upper()}" for f in Settings.model_fields if f"`MW_{f.upper()}`" not in reference]
    assert not missing, "add a row (default, meaning) to docs/configuration.md for: " + ", ".join(missing)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens.

    >>> _slug("Stream worker (`bench_stream.py`)")
    'stream-worker-bench_streampy'
    >>> _slug("Segments (客户分群) and the publishers")
    'segments-客户分群-and-the-publishers'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in re.sub(r"```.*?```", "", markdown, flags=re.S).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(markdown: str) -> list[str]:
    """Targets of inline links ``[text](target)`` and reference definitions, outside code blocks."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    inline = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    refs = re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.M)
    return inline + refs


def test_relative_links_in_the_docs_point_to_files_and_headings_that_exist() -> None:
    broken = []
    for doc in _doc_files():
        for target in _links(doc.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            dest = (doc.parent / path_part).resolve() if path_part else doc
            try:
                rel = _rel(dest)
            except ValueError:
                broken.append(f"{_rel(doc)}: {target} (outside the repository)")
                continue
            if not dest.exists():
                if rel not in PENDING_PAGES:
                    broken.append(f"{_rel(doc)}: {target} (no such file)")
                continue
            if anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
                broken.append(f"{_rel(doc)}: {target} (no such heading)")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_readme_opens_with_the_two_commands_and_they_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash deploy/demo.sh", "bash deploy/test.sh"]
    for cmd in commands:
        assert (ROOT / cmd.split()[1]).is_file()
    # a README, not a lab notebook: reference, logs and figures' tables live in docs/, bench/, eval/
    assert len(readme.splitlines()) <= 300


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
