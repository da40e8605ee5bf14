"""The daily archive codec: round trip, ring reuse, tolerance of foreign bytes."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from meterwatch import dailyarchive as da

finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
maybe = st.one_of(st.none(), finite)


@given(day=st.integers(min_value=1, max_value=800_000), kwh=maybe, exp=maybe, lo=maybe, hi=maybe)
def test_round_trip_within_float32(
    day: int, kwh: float | None, exp: float | None, lo: float | None, hi: float | None
) -> None:
    blob = da.apply_writes(b"", da.writes([da.DayRecord(day, kwh, exp, lo, hi)]))
    got = da.decode(blob)[day]
    for want, have in zip((kwh, exp, lo, hi), got[1:], strict=True):
        if want is None:
            assert have is None
        else:
            assert have is not None and math.isclose(have, want, rel_tol=1e-6, abs_tol=1e-3)


def test_a_slot_is_reused_after_512_days_and_the_old_day_is_gone() -> None:
    first = da.DayRecord(739_000, 5.0)
    later = da.DayRecord(739_000 + da.SLOTS, 7.0)
    blob = da.apply_writes(b"", da.writes([first]))
    blob = da.apply_writes(blob, da.writes([later]))
    days = da.decode(blob)
    assert first.day not in days
    assert days[later.day].kwh == 7.0
    assert len(blob) <= da.ARCHIVE_SIZE


def test_many_days_fill_at_most_the_archive_size_and_decode_exactly() -> None:
    recs = [da.DayRecord(739_000 + i, float(i), 1.0, 0.5, 2.0) for i in range(600)]
    blob = da.apply_writes(b"", da.writes(recs))
    assert len(blob) == da.ARCHIVE_SIZE
    days = da.decode(blob)
    assert sorted(days) == [r.day for r in recs[-da.SLOTS :]]
    assert days[739_599].kwh == 599.0


def test_unknown_or_truncated_data_decodes_to_what_is_valid() -> None:
    assert da.decode(b"garbage") == {}
    blob = da.apply_writes(b"", da.writes([da.DayRecord(739_001, 1.0)]))
    assert da.decode(blob[:-3]) == {}  # the only record is cut: nothing to trust
    assert da.decode(b"MWD2" + blob[4:]) == {}  # another version is not read as this one
