"""`meterwatch bootstrap` and `meterwatch replay`: publish the rows of an input file."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from meterwatch.cli.feed import InputError, count_rows, read_table
from meterwatch.cli.publish.producer import Publisher, ReplayClock, RunReport, progress_bar
from meterwatch.cli.publish.readers import (
    TS_COLUMNS,
    Rejected,
    _pick,
    read_history,
    read_readings,
    reading_json,
)
from meterwatch.settings import Settings

T = TypeVar("T")


def _count(items: Iterable[T | Rejected], report: RunReport, bar: Any) -> Iterator[T]:
    """Count every row and keep the rejected ones in ``report``; yield the valid ones, in order."""
    for item in items:
        report.rows += 1
        bar.update(1)
        if isinstance(item, Rejected):
            report.rejected.append(item)
        else:
            yield item


async def run_bootstrap(
    settings: Settings,
    path: Path,
    id_column: str | None = None,
    dry_run: bool = False,
    progress: bool | None = None,
) -> RunReport:
    """Validate a history file and publish every valid row to ``settings.topic_history``."""
    report = RunReport()
    t0 = time.perf_counter()
    bar = progress_bar(count_rows(path), "bootstrap", progress)
    try:
        if dry_run:
            for _ in _count(read_history(path, id_column), report, bar):
                pass
            return report
        async with Publisher(settings) as pub:
            for item in _count(read_history(path, id_column), report, bar):
                await pub.send(
                    settings.topic_history,
                    item.customer_id.encode(),
                    item.model_dump_json(exclude_none=True).encode(),
                )
        report.sent = dict(pub.stats.sent)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
    return report


def _time_key(column: object) -> object:
    """A column to sort by time: text times parsed where they all parse, else the text itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    assert isinstance(column, pa.ChunkedArray)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return column
    for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us"), pa.date32()):
        try:
            return pc.cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return column


def _sorted_by_time(path: Path) -> Path:
    """A temporary Parquet copy of ``path`` sorted by time (for paced replays of id-major files)."""
    import pyarrow.parquet as pq

    table = read_table(path)
    tcol = _pick(table.column_names, (*TS_COLUMNS, "day"))
    if tcol is None:
        raise InputError(f"{path}: no time column to sort by")
    key = "__mw_sort_key__"
    table = table.append_column(key, _time_key(table.column(tcol)))
    out = Path(tempfile.mkdtemp(prefix="mw-replay-")) / "sorted.parquet"
    pq.write_table(table.sort_by([(key, "ascending")]).drop_columns([key]), out)
    return out


async def run_replay(
    settings: Settings,
    path: Path,
    *,
    speed: float = 0.0,
    limit: int | None = None,
    id_column: str | None = None,
    timezone: str = "UTC",
    ts_marks: str = "end",
    interval_s: int = 1800,
    customer_from_meter: bool = False,
    sort_by_time: bool = False,
    dry_run: bool = False,
    progress: bool | None = None,
) -> RunReport:
    """Publish the readings of a file to ``settings.topic_readings`` (key: meter_id).

    ``speed`` > 0 paces the replay by the readings' timestamps (2.0 = twice real time);
    0 publishes as fast as possible.
    """
    report = RunReport()
    t0 = time.perf_counter()
    src = _sorted_by_time(path) if sort_by_time else path
    total = count_rows(src)
    bar = progress_bar(
        min(total, limit) if (total is not None and limit is not None) else total or limit, "replay", progress
    )
    clock = ReplayClock(speed)
    items = read_readings(
        src,
        id_column=id_column,
        timezone=timezone,
        ts_marks=ts_marks,
        interval_s=interval_s,
        customer_from_meter=customer_from_meter,
        limit=limit,
    )
    try:
        if dry_run:
            for _ in _count(items, report, bar):
                pass
            return report
        async with Publisher(settings) as pub:
            for item in _count(items, report, bar):
                await clock.wait_for(item.ts)
                await pub.send(settings.topic_readings, item.meter_id.encode(), reading_json(item))
        report.sent = dict(pub.stats.sent)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
        if src != path:
            src.unlink(missing_ok=True)
            src.parent.rmdir()
    return report
