"""The one reader of input files (meterwatch.cli.feed): CSV and Parquet alike, row numbers, per customer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meterwatch.cli.feed import InputError, Malformed, iter_customers, iter_rows, read_table, run_table
from meterwatch.cli.publish import Rejected, read_history, read_readings


def _daily_table(n_days: int = 90) -> pa.Table:
    d0 = dt.date(2024, 1, 1)
    ids, days, kwh = [], [], []
    for cid, level in (("b", 6.0), ("a", 9.0)):
        for i in range(n_days):
            ids.append(cid)
            days.append(d0 + dt.timedelta(days=n_days - 1 - i))  # newest first: the feed sorts
            kwh.append(level + (i % 4) * 0.5 if not (cid == "a" and i > 80) else level * 5)
    return pa.table({"LCLid": ids, "day": days, "energy_sum": kwh})


def test_csv_and_parquet_give_the_same_series_and_alerts(tmp_path: Path) -> None:
    table = _daily_table()
    pq.write_table(table, tmp_path / "d.parquet")
    with (tmp_path / "d.csv").open("w") as fh:
        fh.write("LCLid,day,energy_sum\n")
        for row in table.to_pylist():
            fh.write(f"{row['LCLid']},{row['day'].isoformat()},{row['energy_sum']!r}\n")
    from_parquet = list(iter_customers(read_table(tmp_path / "d.parquet")))
    from_csv = list(iter_customers(read_table(tmp_path / "d.csv")))
    assert [c for c, _ in from_parquet] == ["a", "b"]
    assert from_parquet == from_csv
    for _, series in from_parquet:
        assert list(series.day or []) == sorted(series.day or [])  # in time order
    a = run_table(read_table(tmp_path / "d.parquet"))
    b = run_table(read_table(tmp_path / "d.csv"))
    assert a.alerts and [x.model_dump() for x in a.alerts] == [x.model_dump() for x in b.alerts]


def test_rows_are_numbered_in_file_order_with_malformed_lines_in_place(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text('customer_id,day,kwh\nc1,2024-01-01,1\n\nc1,2024-01-02,1,9\n"c,2",2024-01-03,\nc3,x,y\n')
    rows = list(iter_rows(p))
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    assert rows[1][1] == Malformed("c1,2024-01-02,1,9", 3, 4)
    assert rows[2][1] == {"customer_id": "c,2", "day": "2024-01-03", "kwh": None}
    hist = list(read_history(p))
    assert [(h.row, h.reason.split(" (")[0]) for h in hist if isinstance(h, Rejected)][:1] == [
        (2, "malformed CSV row")
    ]
    with pytest.raises(InputError, match="row 2"):
        read_table(p)  # the backtest refuses a malformed file as a whole


def test_every_command_reads_through_the_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import meterwatch.cli.feed as feed

    p = tmp_path / "r.parquet"
    pq.write_table(_daily_table(5), p)
    opened: list[str] = []
    real = feed.file_format

    def spy(path: Path) -> str:
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(feed, "file_format", spy)
    assert len(list(read_history(p))) == 10
    assert len([r for r in read_readings(p) if not isinstance(r, Rejected)]) == 10
    assert run_table(read_table(p)).rows == 10
    assert opened.count("r.parquet") >= 3


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("none.csv", None, "no such file"),
        ("a.xlsx", "x", "unknown format"),
        ("h.csv", "who,when\n1,2\n", "no customer column"),
    ],
)
def test_unreadable_input_is_one_clear_error(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    p = tmp_path / name
    if text is not None:
        p.write_text(text)
    with pytest.raises(InputError, match=message):
        list(iter_customers(read_table(p)))
