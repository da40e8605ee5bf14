"""Production segment features for evaluation: the engine's fold + ``Engine.segment_features``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.cli.segment_features import Household, engine_features


def _households(n: int, seed: int = 0) -> list[Household]:
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2011-11-01"), np.datetime64("2013-09-01"))
    season = 1.0 + 0.3 * np.cos((days.astype(int) % 365) / 365 * 2 * np.pi)
    out = []
    for i in range(n):
        kwh = rng.uniform(3, 20) * season * rng.lognormal(0, 0.25, days.size)
        kwh[rng.random(days.size) < 0.03] = np.nan  # missing days
        if i == 0:
            kwh[-120:] *= 2.5  # a household whose use went up
        out.append(Household(f"h{i}", days, kwh, np.ones(days.size)))
    return out


def test_features_are_the_engines_own_at_each_date() -> None:
    hs = _households(3)
    dates = [dt.date(2013, 6, 30), dt.date(2013, 7, 31)]
    got = engine_features(hs, dates)
    # the same as folding the readings one by one by hand and asking the engine
    eng = Engine()
    for h in hs:
        cust = CustomerConfig(h.customer_id, timezone="Europe/London")
        p = Profile.new(h.customer_id)
        for j, cp in enumerate(dates):
            for d, k, c in zip(h.days.tolist(), h.kwh.tolist(), h.coverage.tolist(), strict=True):
                if k == k and (j == 0 or d > dates[j - 1]) and d <= cp:
                    eng.process_inplace(p, Reading.daily(d, k, c), cust)
            assert got[j][h.customer_id] == eng.segment_features(p, cust)
    assert (
        min(got[0]["h0"]["trend"], got[1]["h0"]["trend"]) > 0.5 > abs(got[1]["h1"]["trend"])
    )  # the rise shows
    assert got[0]["h1"] != got[1]["h1"]


def test_the_rules_do_not_change_the_features() -> None:
    hs = _households(2, seed=1)
    dates = [dt.date(2013, 8, 31)]
    assert engine_features(hs, dates, emit=True) == engine_features(hs, dates)


def test_households_with_too_little_recent_data_are_left_out() -> None:
    [h] = _households(1)
    sparse = Household(
        "sparse", h.days, np.where(np.arange(h.days.size) % 10 == 0, h.kwh, np.nan), h.coverage
    )
    [f] = engine_features([h, sparse], [dt.date(2013, 6, 30)], min_days=60)
    assert set(f) == {"h0"}
    with pytest.raises(ValueError, match="ascending"):
        engine_features([h], [dt.date(2013, 6, 30), dt.date(2013, 1, 1)])
