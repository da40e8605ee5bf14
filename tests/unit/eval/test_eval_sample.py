"""The evaluation script on the real London sample kept in the repository (the full run: eval_london.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "eval" / "eval_london.py"
    spec = importlib.util.spec_from_file_location("eval_london", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_eval_on_a_sample_finds_big_surges_and_stays_moderate(monkeypatch: pytest.MonkeyPatch) -> None:
    from meterwatch.cli.sample_data import sample_dir

    # the script reads MW_SHARED_DATA; the sample has the full data's layout (300 households)
    monkeypatch.setenv("MW_SHARED_DATA", str(sample_dir()))
    ev = _load()
    assert ev.shared_data() == sample_dir()
    out = ev.evaluate(sample=1.0, share=0.3, seed=7, rules=None, quiet=True)
    assert out["injected"] >= 90  # 30 % of the sample's 300 households (was 30 % of a 10 % sample of 3,500)
    si = out["rules"]["sudden_increase"]
    # big jumps are found within a week, small ones mostly not (they are within normal variation)
    big = [si["recall_7d"][m] for m in (3.0, 4.0, 6.0)]
    assert min(big) >= 80.0 and sum(big) / 3 >= 85.0, big
    assert si["recall_7d"][1.5] <= 30.0
    assert si["median_delay_days"][4.0] is not None and si["median_delay_days"][4.0] <= 4
    # moderation on the untouched households
    assert out["rules"]["customer_facing"]["false_per_100_cycles"] <= 3.5
    assert out["rules"]["sudden_increase"]["false_per_100_cycles"] <= 2.5
    # every customer-facing miss is put in exactly one class, and the classes mean what they say
    cf = out["rules"]["customer_facing"]
    cm = out["customer_facing_misses"]
    for m in (1.5, 2.0, 3.0, 4.0, 6.0):
        missed = round(cf["n"][m] * (100.0 - cf["recall_7d"][m]) / 100.0)
        assert sum(cm["classes"][c][m] for c in ev.MISS_CLASSES) == missed, m
        if cm["recall_7d_detectable"][m] is not None:
            assert cm["recall_7d_detectable"][m] >= cf["recall_7d"][m]
    for miss in out["misses_x3_up"]:
        assert miss["first_alert_day"] is None or miss["first_alert_day"] > 7
        fell = miss["realised"] is not None and miss["realised"] < ev.FELL_BELOW
        assert (miss["class"] == "fell") == fell
        assert (miss["class"] == "no_data") == (miss["realised"] is None)
    # a x1.5 surge rarely doubles the household's level: most of its misses are "own use fell"
    assert cm["classes"]["fell"][1.5] >= cm["classes"]["detector"][1.5]
    table = ev.markdown(out)
    assert "| sudden_increase |" in table and "x6" in table
    assert "| missed by the rules |" in table
