"""The weather-confounded slices of the London evaluation (eval/weather_sets.py), on hand-made inputs."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

EVAL = Path(__file__).resolve().parents[3] / "eval"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EVAL / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ws = _load("weather_sets")


def _mild_with_cold_week(
    start: int = 100, days: int = 200, cold: range = range(160, 167)
) -> dict[int, float]:
    t = {d: 11.0 + 0.5 * ((d * 7) % 3 - 1) for d in range(start, start + days)}  # 10.5-11.5 C, no trend
    t.update({d: 2.0 for d in cold})
    return t


def test_a_cold_week_after_a_mild_month_is_a_cold_snap_and_nothing_else_is() -> None:
    t = _mild_with_cold_week()
    cold = ws.cold_snap_days(t)
    assert 160 in cold  # the cold week itself
    assert cold <= set(range(155, 167))  # only weeks holding cold days
    assert not cold & set(range(100, 150)) and not cold & set(range(170, 300))


def test_steady_cold_and_a_warm_drop_and_gaps_are_no_cold_snap() -> None:
    steady = {d: 2.0 for d in range(200)}  # winter all along: no drop
    assert ws.cold_snap_days(steady) == set()
    warm = {d: 25.0 if d < 100 else 18.0 for d in range(200)}  # 7 C drop, but no heating weather
    assert ws.cold_snap_days(warm) == set()
    gappy = _mild_with_cold_week()
    del gappy[163]  # the week is incomplete: not judged
    assert 160 not in ws.cold_snap_days(gappy)
    assert 160 in ws.cold_snap_days(_mild_with_cold_week())


def _households(
    temps: dict[int, float], slopes: dict[str, float], base: float = 5.0, noise: float = 0.3
) -> Any:
    rng = np.random.default_rng(3)
    ids, days, kwh = [], [], []
    for cid, b in slopes.items():
        for d, t in sorted(temps.items()):
            ids.append(cid)
            days.append(d)
            kwh.append(max(0.0, base + b * max(0.0, 15.5 - t) + rng.normal(0.0, noise)))
    return np.array(ids), np.array(days, dtype=np.int64), np.array(kwh)


def _seasonal(n: int = 400) -> dict[int, float]:
    return {d: 10.0 + 8.0 * np.sin(2 * np.pi * d / 365.0) for d in range(n)}


def test_the_fit_recovers_a_known_hdd_slope_and_labels_the_heating_home_only() -> None:
    temps = _seasonal()
    slopes = {"heat": 0.5, **{f"flat{k}": 0.0 for k in range(9)}, "mild": 0.05}
    fitted = ws.relative_hdd_slopes(*_households(temps, slopes), temps)
    assert abs(fitted["heat"] - 0.5 / 5.0) < 0.01  # 0.5 kWh per degree day over a 5 kWh base
    assert all(abs(fitted[f"flat{k}"]) < 0.01 for k in range(9))
    assert ws.electric_heating(fitted) == {"heat"}


def test_short_histories_get_no_slope_and_flat_populations_no_label() -> None:
    temps = _seasonal()
    short = {d: t for d, t in temps.items() if d < ws.MIN_FIT_DAYS - 1}
    ids, days, kwh = _households(short, {"heat": 0.5})
    assert ws.relative_hdd_slopes(ids, days, kwh, short) == {}
    fitted = ws.relative_hdd_slopes(*_households(temps, {f"flat{k}": 0.0 for k in range(20)}), temps)
    assert len(fitted) == 20 and ws.electric_heating(fitted) == set()  # the top decile must also respond


def test_the_slices_count_cold_snap_surges_and_heating_homes_alerts() -> None:
    temps = _seasonal(500)
    temps.update({d: -2.0 for d in range(380, 387)})  # a cold week in the second winter
    sets = ws.WeatherSets(temps, (2.0, 3.0))
    assert 380 in sets.cold and 300 not in sets.cold
    ids, days, kwh = _households(
        temps, {"heat": 0.5, "s1": 0.0, "s2": 0.0, **{f"f{k}": 0.0 for k in range(8)}}
    )
    raw = pa.table({"LCLid": ids, "day": pa.array(days, type=pa.int32()), "energy_sum": kwh})
    truth = {
        "s1": {"onset": 380, "mult": 3.0, "dur": 20},  # in the cold snap, caught on day 2
        "s2": {"onset": 300, "mult": 3.0, "dur": 20},  # not in a cold snap: not in the slice
    }
    by_cust = {
        "s1": [("sudden_increase", 379, True), ("sudden_increase", 382, True)],  # before onset: ignored
        "s2": [("sudden_increase", 301, True)],
        "heat": [("sudden_increase", 385, True), ("same_period_reached", 390, False)],
        "f0": [("sudden_increase", 385, True)],  # not an electric-heating home
    }
    cycles = {c: 16 for c in set(ids.tolist())}
    sets.add(raw, truth, by_cust, cycles)
    out = sets.result()
    cs = out["cold_snap_surges"]
    assert cs["n"] == {2.0: 0, 3.0: 1} and cs["recall_7d"][3.0] == 100.0 and cs["recall_7d"][2.0] is None
    assert cs["median_delay_days"][3.0] == 2
    eh = out["electric_heating"]
    assert (eh["households"], eh["customer_cycles"], eh["customer_facing_alerts"]) == (1, 16, 1)
    assert eh["false_per_100_cycles"] == 6.25
    assert "cold-snap surges" in "\n".join(ws.markdown(out, (2.0, 3.0)))


def test_onset_cold_places_every_onset_in_a_cold_snap() -> None:
    london = _load("eval_london")
    epoch = dt.date(1970, 1, 1)
    start = (dt.date(2012, 1, 1) - epoch).days
    days = np.arange(start, start + 400)
    n = 40
    ids = np.repeat([f"h{k:02d}" for k in range(n)], len(days))
    raw = pa.table(
        {
            "LCLid": ids,
            "day": pa.array(np.tile(days, n), type=pa.int32()),
            "energy_sum": np.full(len(ids), 8.0),
        }
    )
    cold = {int(d) for d in days if (epoch + dt.timedelta(days=int(d))).month == 11}
    _, truth = london.inject(raw, 0.5, 7, "cold", cold)
    assert len(truth) == n // 2
    assert all(tr["onset"] in cold for tr in truth.values())
    _, anywhere = london.inject(raw, 0.5, 7, "habit", cold)
    assert any(tr["onset"] not in cold for tr in anywhere.values())  # the default is not restricted
