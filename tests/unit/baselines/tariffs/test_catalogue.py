"""The catalogue file: the shipped plans, clear validation errors, MW_TARIFFS_FILE, package data."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from baselines.tariffs import UnknownPlanError, catalogue_or_default, default_catalogue, load_catalogue
from baselines.tariffs.catalogue import DEFAULT_CATALOGUE
from meterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[4]
SHIPPED = ROOT / "baselines" / "tariffs" / DEFAULT_CATALOGUE

PLAN: dict[str, Any] = {
    "id": "p1",
    "name": {"zh-CN": "测试", "en": "test"},
    "currency": "CNY",
    "customer_class": "residential",
    "tier_period": "year",
    "source": "a test",
    "versions": [
        {
            "effective_from": "2020-01-01",
            "energy": {"kind": "flat", "price": "0.5"},
            "tiers": [{"up_to_kwh": "100", "surcharge": "0"}, {"up_to_kwh": None, "surcharge": "0.1"}],
        }
    ],
}


def _cat(*plans: dict[str, Any]) -> bytes:
    return json.dumps({"schema_version": 1, "plans": list(plans)}).encode()


def _plan(**changes: Any) -> dict[str, Any]:
    p = copy.deepcopy(PLAN)
    p.update(changes)
    return p


def _version(**changes: Any) -> dict[str, Any]:
    v: dict[str, Any] = copy.deepcopy(PLAN["versions"][0])
    v.update(changes)
    return v


def test_shipped_catalogue_has_every_required_shape_with_sources() -> None:
    cat = default_catalogue()
    shapes = {p.id: (p.currency, p.customer_class, p.tier_period) for p in cat.plans}
    assert shapes == {
        "cn-js-residential": ("CNY", "residential", "year"),
        "cn-zj-residential-tou": ("CNY", "residential", "year"),
        "cn-fj-residential-monthly": ("CNY", "residential", "cycle"),
        "uk-london-standard": ("GBP", "residential", "none"),
        "cn-commercial-flat": ("CNY", "commercial", "none"),
    }
    assert cat.plan("cn-zj-residential-tou").versions[0].energy.kind == "tou"
    assert cat.plan("uk-london-standard").versions[0].standing_charge_per_day > 0
    for p in cat.plans:
        assert "as far as we know" in p.source or "Illustrative" in p.source, p.id


def test_unknown_plan_id_is_a_specific_error_with_the_id() -> None:
    with pytest.raises(UnknownPlanError) as e:
        default_catalogue().plan("cn-xx-nope")
    assert e.value.plan_id == "cn-xx-nope"
    assert str(e.value) == "unknown tariff plan 'cn-xx-nope'"
    assert isinstance(e.value, LookupError)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        (
            [
                {"up_to_kwh": "200", "surcharge": "0"},
                {"up_to_kwh": "100", "surcharge": "0.1"},
                {"up_to_kwh": None, "surcharge": "0.3"},
            ],
            "up_to_kwh must increase strictly",
        ),
        ([{"up_to_kwh": "100", "surcharge": "0"}], "the last step must have up_to_kwh null"),
        (
            [{"up_to_kwh": None, "surcharge": "0"}, {"up_to_kwh": None, "surcharge": "0.1"}],
            "only the last step may have up_to_kwh null",
        ),
        ([], "give at least one step"),
        ([{"up_to_kwh": "-5", "surcharge": "0"}, {"up_to_kwh": None, "surcharge": "0"}], "greater than 0"),
        (
            [{"up_to_kwh": "100", "surcharge": "-0.1"}, {"up_to_kwh": None, "surcharge": "0"}],
            "greater than or equal to 0",
        ),
        (
            [{"up_to_kwh": "100", "surcharge": "0", "limit": 3}, {"up_to_kwh": None, "surcharge": "0"}],
            "Extra inputs are not permitted",
        ),
    ],
)
def test_bad_tiers_are_pydantic_errors_that_say_what_is_wrong(tiers: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_catalogue(_cat(_plan(versions=[_version(tiers=tiers)])))


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (_plan(tier_period="none"), "so tiers must be null"),
        (_plan(versions=[_version(tiers=None)]), "so tiers are required"),
        (_plan(versions=[_version(), _version()]), "effective_from must increase strictly"),
        (_plan(versions=[]), "at least 1 item"),
        (_plan(currency="yuan"), "should match pattern"),
        (_plan(tariff_year_start="02-30"), "should match pattern"),
        (_plan(source=""), "at least 1 character"),
        (_plan(versions=[_version(energy={"kind": "flat", "price": "0.1234567"})]), "no more than 6 decimal"),
        (_plan(versions=[_version(energy={"kind": "flat", "price": "0.5", "vat": 0.05})]), "Extra inputs"),
        (_plan(versions=[_version(energy={"kind": "block", "price": "0.5"})]), "does not match any of the"),
        (_plan(Id="p1"), "Extra inputs are not permitted"),
    ],
)
def test_bad_plans_are_rejected(plan: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_catalogue(_cat(plan))


def _tou(periods: list[dict[str, Any]], fallback: dict[str, Any]) -> dict[str, Any]:
    return _plan(versions=[_version(energy={"kind": "tou", "periods": periods, "fallback": fallback})])


def _period(name: str, hours: list[list[int]]) -> dict[str, Any]:
    return {"name": name, "label": {"zh-CN": name, "en": name}, "hours": hours, "price": "0.3"}


@pytest.mark.parametrize(
    ("periods", "fallback", "message"),
    [
        (
            [_period("peak", [[8, 22]]), _period("valley", [[0, 8]])],
            {"kind": "flat", "price": "0.5"},
            r"hours \[22, 23\] are in no period",
        ),
        (
            [_period("peak", [[8, 22]]), _period("valley", [[0, 9], [22, 24]])],
            {"kind": "flat", "price": "0.5"},
            "hour 8 is in both 'peak' and 'valley'",
        ),
        (
            [_period("peak", [[8, 22]]), _period("valley", [[0, 8], [22, 24]])],
            {"kind": "shares", "shares": {"peak": "0.6", "valley": "0.3"}},
            "must sum to 1",
        ),
        (
            [_period("peak", [[8, 22]]), _period("valley", [[0, 8], [22, 24]])],
            {"kind": "shares", "shares": {"peak": "1"}},
            "must name exactly the periods",
        ),
        (
            [_period("peak", [[8, 8]]), _period("valley", [[0, 24]])],
            {"kind": "flat", "price": "0.5"},
            "is empty",
        ),
        (
            [_period("peak", [[8, 22]]), _period("peak", [[0, 8], [22, 24]])],
            {"kind": "flat", "price": "0.5"},
            "must be unique",
        ),
    ],
)
def test_bad_time_of_use_periods_are_rejected(
    periods: list[dict[str, Any]], fallback: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        load_catalogue(_cat(_tou(periods, fallback)))


def test_duplicate_ids_and_unknown_schema_version_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"duplicate plan ids: \['p1'\]"):
        load_catalogue(_cat(PLAN, PLAN))
    with pytest.raises(ValidationError, match="schema_version"):
        load_catalogue(json.dumps({"schema_version": 2, "plans": []}).encode())


def test_versions_apply_from_their_date() -> None:
    p = load_catalogue(
        _cat(
            _plan(
                versions=[
                    _version(),
                    _version(effective_from="2021-07-01", energy={"kind": "flat", "price": "0.6"}),
                ]
            )
        )
    ).plan("p1")
    assert p.version_on(dt.date(2021, 6, 30)).effective_from == dt.date(2020, 1, 1)
    assert p.version_on(dt.date(2021, 7, 1)).effective_from == dt.date(2021, 7, 1)


def test_mw_tariffs_file_replaces_the_shipped_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "tariffs.json"
    f.write_bytes(_cat(PLAN))
    monkeypatch.setenv("MW_TARIFFS_FILE", str(f))
    s = Settings(_env_file=None)
    assert s.tariffs_file == f
    assert catalogue_or_default(s.tariffs_file).ids() == ["p1"]
    monkeypatch.delenv("MW_TARIFFS_FILE")
    assert catalogue_or_default(Settings(_env_file=None).tariffs_file) is default_catalogue()


def test_shipped_file_is_the_package_default_and_valid_json() -> None:
    assert load_catalogue(SHIPPED) == default_catalogue()


def test_the_catalogue_is_package_data_of_a_non_editable_build(tmp_path: Path) -> None:
    # build from a copy of the sources (no build/ or egg-info left in the work tree)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("meterwatch", "baselines", "stream", "api", "notifier"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "lib"
    # build_py is the step of every (wheel or direct) install that copies modules and package data
    code = "from setuptools import setup; setup()"
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, "-q", "build_py", "--build-lib", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "baselines" / "tariffs" / "catalogue.py").is_file()
    built = out / "baselines" / "tariffs" / DEFAULT_CATALOGUE
    assert json.loads(built.read_bytes()) == json.loads(SHIPPED.read_bytes())


def test_a_copied_plan_is_priced_with_its_own_versions() -> None:
    uk = default_catalogue().plan("uk-london-standard")
    assert uk.compiled.versions[-1].flat_price == 154_000  # the original's integer form is built
    first_only = uk.model_copy(update={"versions": uk.versions[:1]})
    assert len(first_only.compiled.versions) == 1
    assert first_only.version_on(dt.date(2014, 1, 1)).effective_from == dt.date(2011, 10, 1)
    assert len(uk.compiled.versions) == 3
