"""Weather files for the backtest and the evaluations: daily mean temperatures per region.

Two forms are read (by their header):

* the meterwatch form, CSV ``region,day,temp_mean_c`` (``day`` ISO ``YYYY-MM-DD``; region
  ``*``: the temperatures of every customer whose region has none of its own);
* the Dark Sky daily export of the London smart-meter data set (``weather_daily_darksky.csv``:
  columns ``time``, ``temperatureMax``, ``temperatureMin``, ...): the day's mean temperature is
  (max + min) / 2, the UK degree-day convention, for the region given (default ``*``).

``python -m meterwatch.cli.weather_file IN OUT [--region R]`` converts either form into the
meterwatch form (days sorted, one decimal: how ``data/sample/weather`` was made).

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "w.csv").write_text("region,day,temp_mean_c\\nGB-ENG,2013-01-01,4.5\\n")
>>> read_weather(d / "w.csv").series("GB-ENG")
{734869: 4.5}
>>> _ = (d / "ds.csv").write_text("temperatureMax,time,temperatureMin\\n9.0,2013-01-01 00:00:00,2.0\\n")
>>> read_weather(d / "ds.csv").series(None)
{734869: 5.5}
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

from baselines.weather import ANY_REGION, Temperatures

MW_COLUMNS = ("region", "day", "temp_mean_c")
DARKSKY_COLUMNS = ("time", "temperatureMax", "temperatureMin")


def _rows(path: Path, region: str | None) -> Iterator[tuple[str, int, float]]:
    """(region, day ordinal, mean C) of each row; ``ValueError`` naming the file and line."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or ())
        if set(MW_COLUMNS) <= cols:
            kind = "mw"
        elif set(DARKSKY_COLUMNS) <= cols:
            kind = "darksky"
        else:
            raise ValueError(
                f"{path}: not a weather file (columns {', '.join(MW_COLUMNS)}, or the Dark Sky daily "
                f"export with {', '.join(DARKSKY_COLUMNS)}); found {sorted(cols)}"
            )
        for line, row in enumerate(reader, start=2):
            try:
                if kind == "mw":
                    reg = region or row["region"] or ANY_REGION
                    yield reg, dt.date.fromisoformat(row["day"][:10]).toordinal(), float(row["temp_mean_c"])
                else:
                    t = (float(row["temperatureMax"]) + float(row["temperatureMin"])) / 2.0
                    yield region or ANY_REGION, dt.date.fromisoformat(row["time"][:10]).toordinal(), t
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: unusable weather row: {e}") from None


def read_weather(path: Path, region: str | None = None) -> Temperatures:
    """The temperatures of a weather file (either form); ``region`` overrides the file's regions.

    A missing or unreadable file, an unknown header or a bad row: ``ValueError`` with the place.
    """
    try:
        return Temperatures.from_rows(_rows(path, region))
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None


def convert(src: Path, dst: Path, region: str | None = None) -> int:
    """Write ``src`` (either form) in the meterwatch form; returns the number of days written.

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "ds.csv").write_text("temperatureMax,time,temperatureMin\\n9.04,2013-01-01 00:00:00,2.0\\n")
    >>> convert(d / "ds.csv", d / "w.csv", "GB-ENG"), (d / "w.csv").read_text().splitlines()[1]
    (1, 'GB-ENG,2013-01-01,5.5')
    """
    rows = sorted({(reg, day): t for reg, day, t in _rows(src, region)}.items())
    with Path(dst).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(MW_COLUMNS)
        for (reg, day), t in rows:
            w.writerow([reg, dt.date.fromordinal(day).isoformat(), f"{t:.1f}"])
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="convert a weather file into region,day,temp_mean_c")
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--region", help="the region of every row (default: the file's, else '*')")
    a = ap.parse_args(argv)
    try:
        n = convert(a.src, a.dst, a.region)
    except ValueError as e:
        print(f"weather_file: {e}", file=sys.stderr)
        return 2
    print(f"{n} days written to {a.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
