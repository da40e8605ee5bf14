"""Publishers: put history, recorded readings and synthetic data on Kafka.

* :func:`read_history` turns a CSV/Parquet file of daily or per-cycle consumption into
  validated ``HistoryRow`` values (``meterwatch bootstrap``);
* :func:`read_readings` turns a CSV/Parquet file of interval or daily readings into
  validated ``MeterReading`` values (``meterwatch replay``);
* :class:`Publisher` sends ``(topic, key, value)`` messages with one aiokafka producer
  (acks=all, idempotent, batched with linger), optionally paced, with a progress bar.

A row that does not validate becomes a :class:`Rejected` (row number, reason, the raw
row): callers report every one of them; nothing is dropped silently.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "h.csv"
>>> _ = p.write_text("LCLid,day,energy_sum\\nA,2024-01-01,7.5\\nA,2024-01-02,-1\\n")
>>> rows = list(read_history(p))
>>> rows[0].customer_id, rows[0].day, rows[0].kwh
('A', datetime.date(2024, 1, 1), 7.5)
>>> rows[1].row, rows[1].reason
(2, 'kwh: Input should be greater than or equal to 0')
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from meterwatch.contracts import HistoryRow, MeterReading
from meterwatch.settings import Settings

ID_COLUMNS = ("customer_id", "meter_id", "LCLid")
KWH_COLUMNS = ("kwh", "energy_sum")
TS_COLUMNS = ("ts", "tstp", "timestamp")
INVALID_ROW = "__invalid_row__"


@dataclass(frozen=True)
class Rejected:
    """A row that could not be published, and why (1-based row number, header excluded)."""

    row: int
    reason: str
    raw: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"row": self.row, "reason": self.reason, "raw": self.raw}, default=str)


class InputError(ValueError):
    """The file as a whole cannot be read (missing file, unknown format, missing columns)."""


# --------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------


def _batches(path: Path, batch_size: int = 65536) -> Iterator[list[dict[str, Any]]]:
    """Rows of a CSV or Parquet file as dicts, in batches (file order)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith(".parquet") or suffix.endswith(".pq"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_size):
            yield batch.to_pylist()
    elif suffix.endswith(".csv") or suffix.endswith(".csv.gz"):
        import csv
        import gzip

        # every value as text: validation (and its error messages) is ours, so that one bad
        # value far down the file is a rejected row, not a parser failure for the whole file
        opener: Any = gzip.open if suffix.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                return
            width = len(header)
            rows: list[dict[str, Any]] = []
            for rec in reader:
                if len(rec) != width:
                    if not rec:  # blank line
                        continue
                    text = ",".join(rec)
                    rows.append({INVALID_ROW: f"row (expected {width} columns, got {len(rec)}): {text}"})
                else:
                    rows.append({k: (v if v != "" else None) for k, v in zip(header, rec, strict=True)})
                if len(rows) >= batch_size:
                    yield rows
                    rows = []
            if rows:
                yield rows
    else:
        raise InputError(f"{path}: unknown format (expected .csv, .csv.gz or .parquet)")


def count_rows(path: Path) -> int | None:
    """Number of data rows if cheap to know (Parquet metadata), else None."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def _pick(columns: Iterable[str], wanted: Iterable[str], explicit: str | None = None) -> str | None:
    cols = list(columns)
    if explicit:
        if explicit not in cols:
            raise InputError(f"column {explicit!r} not in the file (columns: {', '.join(cols)})")
        return explicit
    for w in wanted:
        if w in cols:
            return w
    return None


def _reason(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def _num(v: Any) -> Any:
    """CSV text -> number where it is one (so that '7.5' and 7.5 validate alike)."""
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        try:
            return float(s)
        except ValueError:
            return v
    return v


def read_history(path: Path, id_column: str | None = None) -> Iterator[HistoryRow | Rejected]:
    """``HistoryRow`` (or ``Rejected``) for every row of a daily or per-cycle history file.

    Daily: an id column (``customer_id`` | ``meter_id`` | ``LCLid``), ``day`` and
    ``kwh`` | ``energy_sum`` (``energy_count`` -> coverage = count / 48 if present).
    Per-cycle: ``customer_id``, ``start``, ``end``, ``kwh`` [, ``coverage``].
    """
    n = 0
    cols_checked = False
    idc = kwhc = None
    for batch in _batches(path):
        if not batch:
            continue
        if not cols_checked:
            cols = list(batch[0])
            idc = _pick(cols, ID_COLUMNS, id_column)
            kwhc = _pick(cols, KWH_COLUMNS)
            missing = [name for name, c in (("id", idc), ("kwh", kwhc)) if c is None]
            if "day" not in cols and not ("start" in cols and "end" in cols):
                missing.append("day (or start and end)")
            if missing:
                raise InputError(
                    f"{path}: missing column(s): {', '.join(missing)} (columns: {', '.join(cols)})"
                )
            cols_checked = True
        assert idc is not None and kwhc is not None
        for raw in batch:
            n += 1
            if INVALID_ROW in raw:
                yield Rejected(n, f"malformed CSV {raw[INVALID_ROW]}", raw)
                continue
            d: dict[str, Any] = {"customer_id": raw.get(idc), "kwh": _num(raw.get(kwhc))}
            if raw.get("day") is not None:
                d["day"] = raw["day"]
            else:
                d["start"], d["end"] = raw.get("start"), raw.get("end")
            cov = _num(raw.get("coverage"))
            if cov is None and raw.get("energy_count") is not None:
                cnt = _num(raw["energy_count"])
                if isinstance(cnt, float | int):
                    cov = min(1.0, float(cnt) / 48.0)
            if cov is not None:
                d["coverage"] = cov
            if d["kwh"] is None:
                yield Rejected(n, "kwh: missing value", raw)
                continue
            try:
                yield HistoryRow.model_validate(d)
            except ValidationError as e:
                yield Rejected(n, _reason(e), raw)


def _aware(v: Any, tz: ZoneInfo) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str) and v.strip():
        try:
            t = dt.datetime.fromisoformat(v.strip())
        except ValueError:
            return None
    else:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def read_readings(
    path: Path,
    id_column: str | None = None,
    timezone: str = "UTC",
    ts_marks: str = "end",
    interval_s: int = 1800,
    customer_from_meter: bool = False,
    limit: int | None = None,
) -> Iterator[MeterReading | Rejected]:
    """``MeterReading`` (or ``Rejected``) for every row of a readings file, in file order.

    Interval files: an id column (``meter_id`` | ``customer_id`` | ``LCLid`` or ``id_column``),
    a time column (``ts`` | ``tstp`` | ``timestamp``; naive times are in ``timezone``;
    ``ts_marks="start"`` when they mark the start of the interval) and ``kwh`` or
    ``register_kwh``.  Daily files: ``day`` and ``kwh`` | ``energy_sum`` -> one reading
    per day at the next local midnight with ``interval_s = 86400``.
    """
    tz = ZoneInfo(timezone)
    n = 0
    checked = False
    idc = tsc = kwhc = None
    daily = False
    for batch in _batches(path):
        if not batch:
            continue
        if not checked:
            cols = list(batch[0])
            idc = _pick(cols, ("meter_id", "LCLid", "customer_id"), id_column)
            tsc = _pick(cols, TS_COLUMNS)
            kwhc = _pick(cols, (*KWH_COLUMNS, "register_kwh"))
            daily = tsc is None and "day" in cols
            missing = [name for name, c in (("meter id", idc), ("kwh", kwhc)) if c is None]
            if tsc is None and not daily:
                missing.append("ts (or day)")
            if missing:
                raise InputError(
                    f"{path}: missing column(s): {', '.join(missing)} (columns: {', '.join(cols)})"
                )
            checked = True
        assert idc is not None and kwhc is not None
        for raw in batch:
            if limit is not None and n >= limit:
                return
            n += 1
            if INVALID_ROW in raw:
                yield Rejected(n, f"malformed CSV {raw[INVALID_ROW]}", raw)
                continue
            mid = raw.get(idc)
            d: dict[str, Any] = {"meter_id": mid}
            if "customer_id" in raw and idc != "customer_id" and raw["customer_id"] is not None:
                d["customer_id"] = raw["customer_id"]
            elif customer_from_meter:
                d["customer_id"] = mid
            if daily:
                day = raw.get("day")
                if isinstance(day, str):
                    try:
                        day = dt.date.fromisoformat(day.strip())
                    except ValueError:
                        yield Rejected(n, f"day: not a date: {day!r}", raw)
                        continue
                if not isinstance(day, dt.date):
                    yield Rejected(n, "day: missing value", raw)
                    continue
                d["ts"] = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
                d["interval_s"] = 86400
            else:
                assert tsc is not None
                ts = _aware(raw.get(tsc), tz)
                if ts is None:
                    yield Rejected(n, f"ts: not a timestamp: {raw.get(tsc)!r}", raw)
                    continue
                step = int(_num(raw.get("interval_s")) or interval_s)
                d["interval_s"] = step
                d["ts"] = ts + dt.timedelta(seconds=step) if ts_marks == "start" else ts
            value = _num(raw.get(kwhc))
            if value is None:
                yield Rejected(n, f"{kwhc}: missing value", raw)
                continue
            d["register_kwh" if kwhc == "register_kwh" else "kwh"] = value
            if raw.get("quality") is not None:
                d["quality"] = raw["quality"]
            try:
                yield MeterReading.model_validate(d)
            except ValidationError as e:
                yield Rejected(n, _reason(e), raw)


def reading_json(r: MeterReading) -> bytes:
    """Compact JSON of a reading, ``ts`` as ISO-8601 with offset, no nulls."""
    return r.model_dump_json(exclude_none=True).encode()


# --------------------------------------------------------------------------------------
# publishing
# --------------------------------------------------------------------------------------


@dataclass
class PublishStats:
    sent: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class Publisher:
    """One idempotent aiokafka producer (acks=all), batched, optionally paced.

    Use as ``async with Publisher(settings) as pub: await pub.send(topic, key, value)``.
    """

    def __init__(self, settings: Settings, linger_ms: int = 20, max_in_flight: int = 20000) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self.max_in_flight = max_in_flight
        self.stats = PublishStats()
        self._pending: list[asyncio.Future[Any]] = []
        self._producer: Any = None
        self._t0 = 0.0

    async def __aenter__(self) -> Publisher:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            max_batch_size=512 * 1024,
            compression_type=None,
            client_id="meterwatch-publisher",
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        self._t0 = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                await self.flush()
        finally:
            await self._producer.stop()
            self.stats.seconds = time.perf_counter() - self._t0

    async def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        fut = await self._producer.send(topic, value=value, key=key)
        self._pending.append(fut)
        self.stats.sent[topic] = self.stats.sent.get(topic, 0) + 1
        if len(self._pending) >= self.max_in_flight:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every message sent so far is acknowledged (raises the first error)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class Pacer:
    """Sleep so that ``n`` events take at least ``n / rate`` seconds (rate <= 0: no pacing)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.t0 = time.perf_counter()
        self.n = 0

    async def tick(self, k: int = 1) -> None:
        self.n += k
        if self.rate <= 0:
            return
        ahead = self.n / self.rate - (time.perf_counter() - self.t0)
        if ahead > 0.005:
            await asyncio.sleep(ahead)


class ReplayClock:
    """Pace a replay by the readings' own timestamps, ``speed`` times faster than real time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.first_ts: float | None = None
        self.t0 = 0.0

    async def wait_for(self, ts: dt.datetime) -> None:
        if self.speed <= 0 or math.isinf(self.speed):
            return
        epoch = ts.timestamp()
        if self.first_ts is None:
            self.first_ts, self.t0 = epoch, time.perf_counter()
            return
        due = (epoch - self.first_ts) / self.speed - (time.perf_counter() - self.t0)
        if due > 0.005:
            await asyncio.sleep(min(due, 3600.0))


async def aiter_list(items: Iterable[Any]) -> AsyncIterator[Any]:
    for x in items:
        yield x


def json_bytes(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------------------
# the three commands (called by meterwatch/cli/commands/sim_cmds.py and by the tests)
# --------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a publisher command did: counts per topic, rejected rows (all of them)."""

    sent: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


def _progress(total: int | None, desc: str, enabled: bool | None) -> Any:
    from tqdm import tqdm

    # enabled=None: tqdm decides (on for a terminal, off when piped)
    return tqdm(
        total=total, desc=desc, unit="rows", disable=None if enabled is None else not enabled, mininterval=0.5
    )


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
    bar = _progress(count_rows(path), "bootstrap", progress)
    try:
        if dry_run:
            for item in read_history(path, id_column):
                report.rows += 1
                bar.update(1)
                if isinstance(item, Rejected):
                    report.rejected.append(item)
            return report
        async with Publisher(settings) as pub:
            for item in read_history(path, id_column):
                report.rows += 1
                bar.update(1)
                if isinstance(item, Rejected):
                    report.rejected.append(item)
                    continue
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


def _sorted_by_time(path: Path, id_column: str | None) -> Path:
    """A temporary Parquet copy of ``path`` sorted by time (for paced replays of id-major files)."""
    import tempfile

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pq.read_table(path) if path.suffix.lower() in (".parquet", ".pq") else pacsv.read_csv(path)
    tcol = _pick(table.column_names, (*TS_COLUMNS, "day"))
    if tcol is None:
        raise InputError(f"{path}: no time column to sort by")
    out = Path(tempfile.mkdtemp(prefix="mw-replay-")) / "sorted.parquet"
    pq.write_table(table.sort_by([(tcol, "ascending")]), out)
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
    src = _sorted_by_time(path, id_column) if sort_by_time else path
    total = count_rows(src)
    bar = _progress(
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
            for item in items:
                report.rows += 1
                bar.update(1)
                if isinstance(item, Rejected):
                    report.rejected.append(item)
            return report
        async with Publisher(settings) as pub:
            for item in items:
                report.rows += 1
                bar.update(1)
                if isinstance(item, Rejected):
                    report.rejected.append(item)
                    continue
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


async def wait_until_consumed(
    settings: Settings, topic: str, timeout_s: float, first_commit_s: float = 15.0, poll_s: float = 0.5
) -> tuple[bool, str]:
    """Wait until the worker's consumer group (``settings.app_id``) has consumed ``topic`` to its end.

    Returns (done, message). Gives up after ``first_commit_s`` when the group has committed
    nothing on the topic (no worker running), and after ``timeout_s`` in any case.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    loop = asyncio.get_running_loop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="meterwatch-publisher")
    await consumer.start()
    try:
        await admin.start()
        try:
            meta = await admin.describe_topics([topic])
            parts = sorted(
                int(p["partition"]) for t in meta if t.get("error_code") == 0 for p in t.get("partitions", [])
            )
            tps = [TopicPartition(topic, p) for p in parts]
            if not tps:
                return False, f"topic {topic} not found"
            end = await consumer.end_offsets(tps)
            t0 = loop.time()
            while True:
                committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
                seen = {tp: c.offset for tp, c in committed.items() if c is not None and c.offset >= 0}
                behind = sum(max(0, end[tp] - seen.get(tp, 0)) for tp in tps)
                waited = loop.time() - t0
                if behind == 0:
                    return True, f"the worker ({settings.app_id}) has consumed {topic} ({waited:.1f}s)"
                if not seen and waited > first_commit_s:
                    return False, f"no worker ({settings.app_id}) is consuming {topic}; not waiting for it"
                if waited > timeout_s:
                    return False, f"{behind} messages of {topic} still unconsumed after {timeout_s:.0f}s"
                await asyncio.sleep(poll_s)
        finally:
            await admin.close()
    finally:
        await consumer.stop()


SIM_PARTS = ("customers", "history", "readings")


def simulation_messages(
    settings: Settings,
    cfg: Any,
    publish_customers: bool = True,
    with_customer_id: bool = False,
    parts: Iterable[str] = SIM_PARTS,
) -> Iterator[tuple[str, bytes, bytes]]:
    """Every message of a simulation, in publishing order: customers, history, readings."""
    from meterwatch.cli.simulate import generate_history, generate_readings, make_households

    wanted = set(parts)
    households = make_households(cfg)
    if publish_customers and "customers" in wanted:
        for h in households:
            record = json_bytes(h.customer_record(cfg.timezone))
            yield settings.topic_customers, h.customer_id.encode(), record
    if "history" in wanted:
        for row in generate_history(households, cfg):
            yield settings.topic_history, row["customer_id"].encode(), json_bytes(row)
    if "readings" in wanted:
        for r in generate_readings(households, cfg, with_customer_id=with_customer_id):
            yield settings.topic_readings, r["meter_id"].encode(), json_bytes(r)


async def run_simulate(
    settings: Settings,
    cfg: Any,
    *,
    publish_customers: bool = True,
    with_customer_id: bool = False,
    rate: float = 0.0,
    out: Path | None = None,
    progress: bool | None = None,
    parts: Iterable[str] = SIM_PARTS,
    pause_after_history: float = 0.0,
    wait_for_worker: float = 0.0,
) -> RunReport:
    """Publish a simulation (or, with ``out``, write it as JSON Lines ``{topic, key, value}``).

    ``rate`` > 0 limits readings per second (customers and history go unpaced).
    ``parts`` selects what to publish; ``pause_after_history`` waits (seconds) between the
    history and the first reading, so that a running worker has loaded the history first;
    ``wait_for_worker`` (seconds, at most) instead waits until the worker's consumer group
    has consumed the history topic to its end (skipped at once when no worker consumes it).
    """
    from meterwatch.cli.simulate import make_households, summarise

    parts = tuple(parts)
    report = RunReport()
    t0 = time.perf_counter()
    s = summarise(make_households(cfg), cfg)
    total = (
        (s.readings if "readings" in parts else 0)
        + (s.history_rows if "history" in parts else 0)
        + (s.customers if publish_customers and "customers" in parts else 0)
    )
    bar = _progress(total, "simulate", progress)
    msgs = simulation_messages(settings, cfg, publish_customers, with_customer_id, parts)
    try:
        if out is not None:
            with out.open("w", encoding="utf-8") as fh:
                for topic, key, value in msgs:
                    fh.write(
                        json.dumps({"topic": topic, "key": key.decode(), "value": json.loads(value)}) + "\n"
                    )
                    report.sent[topic] = report.sent.get(topic, 0) + 1
                    report.rows += 1
                    bar.update(1)
            return report
        pacer = Pacer(rate)
        first_reading = True
        async with Publisher(settings) as pub:
            for topic, key, value in msgs:
                if topic == settings.topic_readings:
                    if (
                        first_reading
                        and "history" in parts
                        and (pause_after_history > 0 or wait_for_worker > 0)
                    ):
                        await pub.flush()
                        if pause_after_history > 0:
                            await asyncio.sleep(pause_after_history)
                        if wait_for_worker > 0:
                            _, note = await wait_until_consumed(
                                settings, settings.topic_history, wait_for_worker
                            )
                            report.notes.append(note)
                        pacer = Pacer(rate)
                    first_reading = False
                    await pacer.tick()
                await pub.send(topic, key, value)
                report.rows += 1
                bar.update(1)
        report.sent = dict(pub.stats.sent)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
    return report
