"""Benchmark: a worker restoring N customers from its changelogs (prints figures; asserts nothing).

    python bench/bench_recovery.py [--customers 1000000] [--partitions 4] [--templates 8]
                                   [--timeout 900] [--no-rocksdict-reference] [--profile] [--prerestore]

On private topics, consumer groups and Redis prefix of the running local stack (the
tests' isolation, ``meterwatch.cli.devstack.isolation``; all removed at the end) and a
temporary ``MW_DATA_DIR`` (so the worker's RocksDB starts empty):

1. templates: ``--templates`` simulated households (``meterwatch simulate``'s model:
   730 days of daily bootstrap history + 14 days of half-hourly readings) folded through
   the real domain engine, stored as the worker stores them (``stream.state.encode_customer``
   and the registry record's JSON), with placeholder ids.
2. fill: N customers (template ``i % templates`` under the ids ``rc<i>`` / meter ``rm<i>``)
   written with a raw aiokafka producer to the worker's changelogs
   (``<app>-customers-changelog``, ``<app>-profiles-changelog``: key = customer id bytes,
   value = the table value, partition = murmur2 of the key, as stream/profiles.py writes
   them; plus each partition's counters value) and to the registry topic ``customers``
   (which every worker reads whole into its meter index). The worker group's offset on
   ``customers`` is committed at the end, as a group that has run would have it (otherwise
   the worker would re-apply the registry instead of restoring it).
3. references, same topics, nothing else running: a raw aiokafka consumer reading the
   three topics end to end (bytes only), and the same writing every value into a rocksdict
   DB per partition (raw mode, one write batch per fetch), as Faust's store does.
4. worker: one probe reading (customer ``rc0``, after its last reading) is produced, then
   one ``meterwatch worker`` starts with the empty data dir. Timed from the start of the
   process until: Faust's "Worker ready" log line (tables restored, agents resumed), the
   meter index's "meter index ready" line (registry read), and the probe reading counted in
   the read model's ``readings_processed`` (the worker does work: readiness end to end).
   The worker's RSS is read from /proc when the probe is counted.

``--profile`` runs the worker under cProfile (its main thread: Faust's recovery loop; the
Kafka fetches run in Faust's consumer thread). ``--prerestore`` is an experiment, not what
the worker does: before the worker starts, the two changelogs are bulk-restored into its own
RocksDB stores (Faust's store paths, options and stored-offset key) by a raw consumer, so
Faust reads only what follows; the figure is what a bulk restore would give.

"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from meterwatch.cli.devstack.bulk import BatchWriter

PLACEHOLDER_CUSTOMER = "zzcustomerzz"
PLACEHOLDER_METER = "zzmeterzz"
SIM_START = dt.date(2026, 1, 5)
SIM_DAYS = 14


@dataclass(frozen=True)
class Template:
    """One customer's stored values with placeholder ids (``replicate`` fills them in)."""

    record: bytes  # CustomerRecord JSON: `customers` topic and customers table value
    profile: bytes  # stream.state.encode_customer value: profiles table value
    last_ts: dt.datetime  # end of the last folded reading (a probe goes after it)
    meter_id: str = PLACEHOLDER_METER
    customer_id: str = PLACEHOLDER_CUSTOMER


def customer_ids(i: int) -> tuple[str, str]:
    """The customer and meter id of replica ``i``.

    >>> customer_ids(42)
    ('rc0000042', 'rm0000042')
    """
    return f"rc{i:07d}", f"rm{i:07d}"


def replicate(template: Template, customer_id: str, meter_id: str) -> tuple[bytes, bytes, bytes]:
    """``(key, record value, profile value)`` of one customer made from ``template``.

    The placeholders are plain ASCII, so replacing them in the encoded JSON is the same as
    encoding the state under the new ids (tests/unit/bench/test_bench_recovery.py checks it).

    >>> rec = b'{"customer_id":"zzcustomerzz","meter_ids":["zzmeterzz"]}'
    >>> prof = b'{"p":{"id":"zzcustomerzz"}}'
    >>> t = Template(rec, prof, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    >>> replicate(t, "c7", "m7")
    (b'c7', b'{"customer_id":"c7","meter_ids":["m7"]}', b'{"p":{"id":"c7"}}')
    """
    cid = customer_id.encode()
    record = template.record.replace(template.customer_id.encode(), cid).replace(
        template.meter_id.encode(), meter_id.encode()
    )
    return cid, record, template.profile.replace(template.customer_id.encode(), cid)


def build_templates(n: int, seed: int = 0, offset_base: int = 1_000_000) -> list[Template]:
    """``n`` folded simulated households (real engine, real stored form), placeholder ids."""
    from baselines.customer import CustomerConfig
    from baselines.engine import Engine
    from baselines.profile import Profile
    from baselines.readings import Reading
    from meterwatch.cli.simulate import SimConfig, generate_history, generate_readings, make_households
    from meterwatch.contracts import CustomerRecord, MeterReading
    from stream.state import CustomerState, LastWrite, encode_customer

    cfg = SimConfig(customers=n, days=SIM_DAYS, start=SIM_START, seed=seed, surge_share=0.0, drop_share=0.0)
    households = make_households(cfg)
    engine = Engine()
    out: list[Template] = []
    for h in households:
        rec = CustomerRecord.model_validate(
            h.customer_record(cfg.timezone)
            | {"customer_id": PLACEHOLDER_CUSTOMER, "meter_ids": [PLACEHOLDER_METER]}
        )
        conf = CustomerConfig.from_record(rec)
        rows = [r | {"customer_id": PLACEHOLDER_CUSTOMER} for r in generate_history([h], cfg)]
        profile = engine.load_history(Profile.new(PLACEHOLDER_CUSTOMER), rows, conf)
        last = None
        for r in generate_readings([h], cfg):
            reading = MeterReading.model_validate(r | {"meter_id": PLACEHOLDER_METER})
            engine.process_inplace(profile, Reading.from_contract(reading), conf)
            last = reading.ts
        assert last is not None
        st = CustomerState(PLACEHOLDER_CUSTOMER)
        st.record, st.config, st.profile = rec, conf, profile
        st.features_day = (last.date() - dt.date(1970, 1, 1)).days
        st.source_offsets = {h.index % 4: offset_base + 48 * SIM_DAYS * h.index}
        st.last_write = LastWrite(offset_base + h.index, 48, 0)
        out.append(Template(rec.model_dump_json().encode(), encode_customer(st), last))
    return out


# --------------------------------------------------------------------------- Kafka helpers
async def fill(s: Any, templates: list[Template], n: int) -> dict[str, BatchWriter]:
    """Write N customers to the two changelogs and the registry topic; commit the group's offsets."""
    from aiokafka import AIOKafkaProducer

    from stream.state import COUNTERS_KEY, PartitionCounters

    app = s.app_id
    prod = AIOKafkaProducer(
        bootstrap_servers=s.kafka_bootstrap,
        acks=1,
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=4 << 20,
    )
    await prod.start()
    try:
        out = {
            "customers-changelog": BatchWriter(prod, f"{app}-customers-changelog", s.readings_partitions),
            "profiles-changelog": BatchWriter(prod, f"{app}-profiles-changelog", s.readings_partitions),
            "customers": BatchWriter(prod, s.topic_customers, s.customers_partitions),
        }
        chunk = 20_000
        for start in range(0, n, chunk):
            for i in range(start, min(n, start + chunk)):
                key, record, profile = replicate(templates[i % len(templates)], *customer_ids(i))
                out["customers-changelog"].add(key, record)
                out["profiles-changelog"].add(key, profile)
                out["customers"].add(key, record)
            await asyncio.gather(*(f.flush() for f in out.values()))
        per_part = n // s.readings_partitions
        for p in range(s.readings_partitions):
            counters = PartitionCounters(offset=per_part, readings=per_part * 48 * SIM_DAYS)
            out["profiles-changelog"].add(COUNTERS_KEY, counters.encode(), partition=p)
        await out["profiles-changelog"].flush()
    finally:
        await prod.stop()
    await commit_group_offsets(s, s.app_id, s.topic_customers, s.customers_partitions)
    return out


async def commit_group_offsets(s: Any, group: str, topic: str, partitions: int) -> None:
    """Commit ``group``'s offsets on ``topic`` at its end (the group has no members yet)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        await c.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in tps})
    finally:
        await c.stop()


async def read_all(
    s: Any,
    topics: dict[str, int],
    opener: Callable[[Any], Any] | None = None,
    offset_key: bytes | None = None,
) -> tuple[float, int, int]:
    """Read ``topics`` end to end: (seconds, records, key + value bytes).

    Bytes only, or with ``opener`` (topic-partition -> an open rocksdict DB) each fetch is
    written as one write batch, and with ``offset_key`` each DB gets the partition's last
    offset under that key at the end (how Faust's store remembers how far it restored).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    dbs: dict[Any, Any] = {}
    last: dict[Any, int] = {}
    t0 = time.perf_counter()
    await c.start()
    try:
        tps = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        records = size = 0
        while left:
            batch = await c.getmany(timeout_ms=500, max_records=20_000)
            for tp, msgs in batch.items():
                records += len(msgs)
                size += sum(len(m.key or b"") + len(m.value or b"") for m in msgs)
                if opener is not None and msgs:
                    db = dbs.get(tp)
                    write_batch(db if db is not None else dbs.setdefault(tp, opener(tp)), msgs)
                    last[tp] = msgs[-1].offset
                if msgs and msgs[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        if offset_key is not None:
            for tp, offset in last.items():
                dbs[tp].put(offset_key, str(offset).encode())
    finally:
        await c.stop()
        for db in dbs.values():
            db.close()
    return time.perf_counter() - t0, records, size


def write_batch(db: Any, msgs: list[Any]) -> None:
    from rocksdict import WriteBatch

    wb = WriteBatch(raw_mode=True)
    for m in msgs:
        if m.value is None:
            wb.delete(m.key)
        else:
            wb.put(m.key, m.value)
    db.write(wb)


def plain_opener(db_dir: Path) -> Callable[[Any], Any]:
    from rocksdict import Options, Rdict

    return lambda tp: Rdict(str(db_dir / f"{tp.topic}-{tp.partition}.db"), options=Options(raw_mode=True))


async def prerestore(s: Any, instance: str) -> float:
    """Bulk-restore the two changelogs into the worker's own RocksDB stores before it starts.

    The experiment of a bulk restore (not what the worker does today): Faust's store
    API gives each table partition's path and options; the stored changelog offsets make
    Faust read only what follows them.
    """
    from stream.app import build_app

    wapp = build_app(s, instance)
    stores = {t.changelog_topic.get_topic_name(): t.data for t in (wapp.customers_table, wapp.profiles_table)}

    def opener(tp: Any) -> Any:
        store = stores[tp.topic]
        return store.rocksdb_options.open(store.partition_path(tp.partition))

    offset_key = next(iter(stores.values())).offset_key
    el, _, _ = await read_all(s, dict.fromkeys(stores, s.readings_partitions), opener, offset_key)
    return el


def topic_disk_bytes(topics: dict[str, int]) -> int | None:
    """Bytes of the topics' log segments in the local broker's data dir (None: not found)."""
    from meterwatch.cli.devstack.paths import StackPaths
    from meterwatch.settings import Settings

    data = StackPaths.of(Settings()).kafka_data
    if not data.is_dir():
        return None
    total = 0
    for d in data.iterdir():
        if d.is_dir() and d.name.rsplit("-", 1)[0] in topics:
            total += sum(f.stat().st_size for f in d.iterdir() if f.suffix == ".log")
    return total


# --------------------------------------------------------------------------- the worker
def settings_env(settings: Any) -> dict[str, str]:
    """The environment that gives a ``meterwatch worker`` these settings."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or "secret" in name or "auth_header" in name:
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(rest.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


SIGNALS = {
    "faust_ready": "Worker ready",
    "index_ready": "meter index ready",
    "recovery_done": "Recovery complete",
}


async def watch_worker(
    worker: subprocess.Popen[bytes], log: Path, s: Any, limit_s: float
) -> dict[str, float]:
    """Seconds from start to each log signal and to the probe reading being counted; RSS then."""
    import redis

    from meterwatch.keys import Keys

    rds = redis.Redis.from_url(s.redis_url)
    key = Keys(s.redis_prefix).metrics("worker")
    t0 = time.perf_counter()
    seen: dict[str, float] = {}
    pos = 0
    try:
        while time.perf_counter() - t0 < limit_s:
            await asyncio.sleep(0.1)
            lines, pos = new_lines(log, pos)
            now = time.perf_counter() - t0
            for line in lines:
                for name, text in SIGNALS.items():
                    if text in line and name not in seen:
                        seen[name] = now
            if "probe" not in seen and rds.hget(key, "readings_processed") is not None:
                seen["probe"] = now
                seen["rss_mb"], seen["hwm_mb"] = rss_mb(worker.pid)
                for field in ("state_unreadable", "internal_invalid"):
                    v = rds.hget(key, field)
                    seen[field] = float(v) if v is not None else 0.0
            if "probe" in seen and "faust_ready" in seen and "index_ready" in seen:
                return seen
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited ({worker.returncode}): see {log}")
        return seen
    finally:
        rds.close()


def new_lines(log: Path, pos: int) -> tuple[list[str], int]:
    """Complete lines of ``log`` after byte ``pos``, and the position after them."""
    with open(log, "rb") as f:
        f.seek(pos)
        chunk = f.read()
    cut = chunk.rfind(b"\n") + 1
    return chunk[:cut].decode("utf-8", "replace").splitlines(), pos + cut


async def produce_probe(s: Any, template: Template) -> None:
    """One reading of customer ``rc0`` after its last one: counted once the worker is ready."""
    from aiokafka import AIOKafkaProducer

    _, meter = customer_ids(0)
    ts = template.last_ts + dt.timedelta(minutes=30)
    value = orjson.dumps({"meter_id": meter, "ts": ts.isoformat(), "kwh": 0.2, "interval_s": 1800})
    prod = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    await prod.start()
    try:
        await prod.send_and_wait(s.topic_readings, value, key=meter.encode())
    finally:
        await prod.stop()


def start_worker(s: Any, tmp: Path, profile: bool) -> tuple[subprocess.Popen[bytes], Path]:
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", str(tmp / "worker.prof")]
    cmd += [
        "-m",
        "meterwatch.cli",
        "worker",
        "--instance",
        "rec",
        "--metrics-port",
        "0",
        "--loglevel",
        "info",
    ]
    log = tmp / "worker.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, env=settings_env(s), stdout=f, stderr=subprocess.STDOUT, cwd=str(tmp))
    return proc, log


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print("worker did not stop within 60 s of SIGTERM; killed")
        worker.kill()
        worker.wait()


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--partitions", type=int, default=4, help="partitions of the worker's topics (MW_READINGS_PARTITIONS)"
    )
    ap.add_argument("--templates", type=int, default=8, help="simulated households replicated (default 8)")
    ap.add_argument(
        "--timeout", type=float, default=900.0, help="give up on the worker after this many seconds"
    )
    ap.add_argument("--no-rocksdict-reference", action="store_true", help="skip the read-and-write reference")
    ap.add_argument("--profile", action="store_true", help="run the worker under cProfile, print the top")
    ap.add_argument(
        "--prerestore",
        action="store_true",
        help="experiment: bulk-restore the changelogs into the worker's stores (raw consumer, write "
        "batches, Faust's store paths and offset key) before starting it",
    )
    args = ap.parse_args()
    if not 1 <= args.customers <= 5_000_000 or not 1 <= args.partitions <= 64 or args.templates < 1:
        ap.error("--customers 1..5,000,000, --partitions 1..64, --templates >= 1")
    return args


async def references(s: Any, topics: dict[str, int], tmp: Path, rocks: bool) -> dict[str, float]:
    el, recs, size = await read_all(s, topics)
    print(
        f"reference, raw aiokafka read of the 3 topics (bytes only): {el:.1f} s "
        f"({recs:,} records, {size / 1e6:,.0f} MB)"
    )
    out = {"raw": el}
    if rocks:
        (tmp / "ref-rocks").mkdir()
        el2, _, _ = await read_all(s, topics, plain_opener(tmp / "ref-rocks"))
        print(f"reference, the same + rocksdict write batches: {el2:.1f} s")
        out["raw_rocks"] = el2
        shutil.rmtree(tmp / "ref-rocks", ignore_errors=True)
    return out


def report(n: int, seen: dict[str, float], refs: dict[str, float], timeout: float) -> None:
    for name, label in (
        ("recovery_done", "Faust 'Recovery complete'"),
        ("faust_ready", "Faust 'Worker ready' (tables restored)"),
        ("index_ready", "meter index ready (registry read)"),
        ("probe", "probe reading counted (ready end to end)"),
    ):
        v = seen.get(name)
        print(f"worker: {label}: " + (f"{v:.1f} s" if v is not None else f"not within {timeout:.0f} s"))
    ready = seen.get("probe")
    if ready is None:
        return
    print(f"worker RSS when ready: {seen['rss_mb']:,.0f} MB (peak {seen['hwm_mb']:,.0f} MB)")
    if seen.get("state_unreadable") or seen.get("internal_invalid"):
        print(
            f"WARNING: state_unreadable={seen['state_unreadable']:.0f} "
            f"internal_invalid={seen['internal_invalid']:.0f}"
        )
    for name, el in refs.items():
        print(f"ratio worker ready / reference {name}: {ready / el:.1f}x")
    print(f"per 1 M customers: {ready * 1e6 / n:,.0f} s (linear from {n:,})")


def print_profile(path: Path) -> None:
    import pstats

    if not path.exists():
        print("no worker profile written")
        return
    print("--- worker profile, by cumulative time ---")
    pstats.Stats(str(path)).sort_stats("cumulative").print_stats(35)
    print("--- by own time ---")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)


async def run(args: argparse.Namespace, tmp: Path) -> int:
    from meterwatch.cli.devstack.isolation import cleanup, isolated_settings
    from meterwatch.settings import Settings
    from stream.app import prepare_topics

    base = Settings().model_copy(update={"readings_partitions": args.partitions})
    s = isolated_settings(base, tmp / "data")
    worker: subprocess.Popen[bytes] | None = None
    try:
        await prepare_topics(s)
        t = time.perf_counter()
        templates = build_templates(args.templates)
        sizes = sorted(len(x.profile) for x in templates)
        print(
            f"{len(templates)} templates folded in {time.perf_counter() - t:.1f} s; profile value "
            f"{sizes[len(sizes) // 2]:,} B median, record {len(templates[0].record):,} B"
        )
        t = time.perf_counter()
        filled = await fill(s, templates, args.customers)
        el = time.perf_counter() - t
        names = {f.topic: f.n for f in filled.values()}
        for label, f in filled.items():
            print(f"filled {label}: {f.records:,} records, {f.bytes / f.records:,.0f} B key+value per record")
        disk = topic_disk_bytes(names)
        if disk is not None:
            print(
                f"on the broker's disk: {disk / args.customers:,.0f} B per customer over the 3 topics "
                f"({disk / 1e6:,.0f} MB, one copy; filled in {el:.1f} s)"
            )
        refs = await references(s, names, tmp, not args.no_rocksdict_reference)
        await produce_probe(s, templates[0])
        pre = 0.0
        if args.prerestore:
            pre = await prerestore(s, "rec")
            print(f"experiment: bulk restore of the two changelogs into the worker's stores: {pre:.1f} s")
        print(f"load avg before the worker: {os.getloadavg()[0]:.1f}")
        worker, log = start_worker(s, tmp, args.profile)
        seen = await watch_worker(worker, log, s, args.timeout)
        print(f"load avg when ready: {os.getloadavg()[0]:.1f}")
        report(args.customers, seen, refs, args.timeout)
        if args.prerestore and "probe" in seen:
            total = pre + seen["probe"]
            print(f"experiment: bulk restore + worker ready = {total:.1f} s ({total / refs['raw']:.1f}x raw)")
        tables = s.tables_dir / "rec"
        if tables.is_dir():
            print(
                f"worker RocksDB after recovery: {dir_bytes(tables) / args.customers:,.0f} B "
                "per customer on disk"
            )
        stop_worker(worker)
        if args.profile:
            print_profile(tmp / "worker.prof")
        return 0 if "probe" in seen else 1
    finally:
        if worker is not None:
            stop_worker(worker)
            shutil.copy(tmp / "worker.log", Path(tempfile.gettempdir()) / "mw-bench-recovery-worker.log")
        cleanup(s)


def main() -> int:
    args = parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores (shared), load avg {os.getloadavg()}")
    print(f"customers={args.customers:,} partitions={args.partitions} templates={args.templates}")
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-recovery-"))
    try:
        return asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
