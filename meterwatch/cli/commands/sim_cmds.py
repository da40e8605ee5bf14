"""`meterwatch simulate`, `meterwatch replay FILE`, `meterwatch bootstrap FILE`: the publishers.

The work is done in ``meterwatch.cli.publish`` / ``meterwatch.cli.simulate`` (imported inside the
commands, so that ``meterwatch --help`` stays fast).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from meterwatch.cli.options import add_progress_option

MAX_REJECTS_SHOWN = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_simulate(sub)
    _register_replay(sub)
    _register_bootstrap(sub)


def _register_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # over 60 lines: one add_argument per option of `simulate`, nothing else
    p = sub.add_parser(
        "simulate",
        help="publish synthetic households (registry, history, readings with injected surges)",
        description="Synthetic households with daily and seasonal shape, weekday/weekend, holidays, "
        "vacancies and injected 3-6x surges with known onsets. Publishes CustomerRecord JSON to the "
        "customers topic, daily history to the history topic and MeterReading JSON to the readings "
        "topic; deterministic for a given --seed and --start. Prints a summary with the surges.",
    )
    p.add_argument("--customers", type=_positive_int, default=200, help="households (default 200)")
    p.add_argument("--days", type=_positive_int, default=7, help="days of interval readings (default 7)")
    p.add_argument(
        "--start",
        type=_date,
        default=None,
        help="first day of readings, YYYY-MM-DD (default: DAYS days before today, so the readings end today)",
    )
    p.add_argument("--surge-share", type=_share, default=0.05, help="share of households with a surge (0.05)")
    p.add_argument(
        "--drop-share",
        type=_share,
        default=0.02,
        help="share of households that leave 11 days before START and stay away (a long drop; 0.02)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--interval", type=_interval, default=1800, help="reading interval in seconds (1800)")
    p.add_argument(
        "--history-days",
        type=_nonneg_int,
        default=730,
        help="days of daily history before START (730; 0: none)",
    )
    p.add_argument(
        "--publish-customers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="publish the customer records (default: yes)",
    )
    p.add_argument("--with-customer-id", action="store_true", help="put customer_id on every reading")
    p.add_argument(
        "--parts",
        type=_parts,
        default=("customers", "history", "readings"),
        help="what to publish, comma-separated: customers,history,readings (default: all)",
    )
    p.add_argument(
        "--pause-after-history",
        type=float,
        default=0.0,
        metavar="S",
        help="wait S seconds between the history and the readings (let a running worker load the history)",
    )
    p.add_argument(
        "--wait-for-worker",
        type=float,
        default=120.0,
        metavar="S",
        help="before the readings, wait (at most S seconds; 0: never) until a running worker has consumed "
        "the history, so that same-period rules see it (default 120; given up after 15 s when no worker "
        "is running, i.e. the worker's consumer group has no active member)",
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="readings per second (default 0: as fast as possible)"
    )
    p.add_argument("--timezone", default="Asia/Shanghai", help="households' timezone (Asia/Shanghai)")
    p.add_argument("--id-prefix", default="sim", help="prefix of customer/meter/manager ids (sim)")
    p.add_argument(
        "--tariff-plan",
        metavar="ID",
        default=None,
        help="every household's tariff plan (an id of the catalogue, MW_TARIFFS_FILE or the shipped one); "
        "default: none (no money in alerts)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="write JSON Lines {topic,key,value} instead of publishing"
    )
    p.add_argument("--dry-run", action="store_true", help="only print the summary; publish nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _progress_flags(p)
    p.set_defaults(func=_simulate)


def _register_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser(
        "replay",
        help="publish recorded readings from a CSV/Parquet file",
        description="Publish MeterReading JSON (key meter_id) from a CSV or Parquet file: interval data "
        "(meter_id|LCLid, ts|tstp, kwh|register_kwh) or daily data (day, kwh|energy_sum -> interval_s "
        "86400, ts = the next local midnight). Invalid rows are reported with their reasons.",
    )
    r.add_argument("file", type=Path)
    speed = r.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=0.0, help="pace by the timestamps, X times real time")
    speed.add_argument(
        "--as-fast-as-possible", action="store_true", help="no pacing (the default without --speed)"
    )
    r.add_argument("--limit", type=_positive_int, default=None, help="only the first N rows")
    r.add_argument(
        "--id-column", default=None, help="the meter id column (default: meter_id, LCLid, customer_id)"
    )
    r.add_argument(
        "--customer-from-meter", action="store_true", help="set customer_id = meter id on every reading"
    )
    r.add_argument("--timezone", default="UTC", help="timezone of naive timestamps / days (default UTC)")
    r.add_argument(
        "--ts-marks",
        choices=("end", "start"),
        default="end",
        help="whether a naive file timestamp marks the interval's end (default) or start (London: start)",
    )
    r.add_argument("--interval", type=_interval, default=1800, help="interval when the file has none (1800)")
    r.add_argument(
        "--sort-by-time", action="store_true", help="publish in time order (for meter-major files)"
    )
    _reject_flags(r)
    _progress_flags(r)
    r.set_defaults(func=_replay)


def _register_bootstrap(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "bootstrap",
        help="load two to three years of daily or per-cycle history (through Kafka)",
        description="Publish history rows (HistoryRow JSON, key customer_id) to the history topic, from "
        "which the worker builds each customer's cycles, so same-period rules work from the first "
        "streamed reading. Daily files: customer_id|meter_id|LCLid, day, kwh|energy_sum "
        "[, energy_count|coverage]. Per-cycle files: customer_id, start, end, kwh [, coverage]. "
        "Invalid rows are reported with their reasons.",
    )
    b.add_argument("file", type=Path)
    b.add_argument(
        "--id-column", default=None, help="the customer id column (default: customer_id, meter_id, LCLid)"
    )
    _reject_flags(b)
    _progress_flags(b)
    b.set_defaults(func=_bootstrap)


# --- argument types -----------------------------------------------------------------------


def _positive_int(s: str) -> int:
    v = int(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {s}")
    return v


def _nonneg_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {s}")
    return v


def _share(s: str) -> float:
    v = float(s)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {s}")
    return v


def _interval(s: str) -> int:
    v = int(s)
    if v <= 0 or 86400 % v:
        raise argparse.ArgumentTypeError(f"must divide a day (e.g. 900, 1800, 3600): {s}")
    return v


def _parts(s: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in s.split(",") if p.strip())
    bad = [p for p in parts if p not in ("customers", "history", "readings")]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"must be among customers,history,readings: {s}")
    return parts


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {s}") from e


def _progress_flags(p: argparse.ArgumentParser) -> None:
    add_progress_option(p)


def _reject_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rejects", type=Path, default=None, help="write every rejected row as JSON Lines here")
    p.add_argument("--dry-run", action="store_true", help="validate and report; publish nothing")
    p.add_argument("--fail-on-reject", action="store_true", help="exit 1 if any row was rejected")


# --- commands --------------------------------------------------------------------------------


def _report_rejects(report: Any, args: argparse.Namespace) -> int:
    rejected = report.rejected
    if args.rejects is not None:
        with args.rejects.open("w", encoding="utf-8") as fh:
            for rj in rejected:
                fh.write(rj.to_json() + "\n")
    for rj in rejected[:MAX_REJECTS_SHOWN]:
        print(f"rejected row {rj.row}: {rj.reason}", file=sys.stderr)
    if len(rejected) > MAX_REJECTS_SHOWN:
        more = len(rejected) - MAX_REJECTS_SHOWN
        where = f" (all in {args.rejects})" if args.rejects else " (use --rejects FILE to keep them all)"
        print(f"... and {more} more rejected rows{where}", file=sys.stderr)
    sent = ", ".join(f"{n} to {t}" for t, n in report.sent.items()) or "nothing published"
    verb = "validated" if args.dry_run else "read"
    print(
        f"{verb} {report.rows} rows in {report.seconds:.1f}s: {report.accepted} valid, "
        f"{len(rejected)} rejected; {sent}"
    )
    if rejected and (args.fail_on_reject or report.accepted == 0):
        return 1
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from meterwatch.cli.publish import InputError, run_bootstrap
    from meterwatch.settings import Settings

    settings = Settings()
    try:
        report = asyncio.run(
            run_bootstrap(
                settings, args.file, id_column=args.id_column, dry_run=args.dry_run, progress=args.progress
            )
        )
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KafkaError as e:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    return _report_rejects(report, args)


def _replay(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from aiokafka.errors import KafkaError

    from meterwatch.cli.publish import InputError, run_replay
    from meterwatch.settings import Settings

    settings = Settings()
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"error: unknown timezone {args.timezone!r}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            run_replay(
                settings,
                args.file,
                speed=0.0 if args.as_fast_as_possible else args.speed,
                limit=args.limit,
                id_column=args.id_column,
                timezone=args.timezone,
                ts_marks=args.ts_marks,
                interval_s=args.interval,
                customer_from_meter=args.customer_from_meter,
                sort_by_time=args.sort_by_time,
                dry_run=args.dry_run,
                progress=args.progress,
            )
        )
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KafkaError as e:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    return _report_rejects(report, args)


def _sim_config(args: argparse.Namespace, tz: Any) -> Any:
    from meterwatch.cli.simulate import SimConfig

    return SimConfig(
        customers=args.customers,
        days=args.days,
        start=args.start or (dt.datetime.now(tz).date() - dt.timedelta(days=args.days)),
        interval_s=args.interval,
        surge_share=args.surge_share,
        drop_share=args.drop_share,
        seed=args.seed,
        history_days=args.history_days,
        timezone=args.timezone,
        id_prefix=args.id_prefix,
        tariff_plan=args.tariff_plan,
    )


def _simulate(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from meterwatch.cli.publish import run_simulate
    from meterwatch.cli.simulate import make_households, summarise
    from meterwatch.settings import Settings

    try:
        tz = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"error: unknown timezone {args.timezone!r}", file=sys.stderr)
        return 2
    settings = Settings()
    if args.tariff_plan is not None:
        from baselines.tariffs import catalogue_or_default

        try:
            known = catalogue_or_default(settings.tariffs_file).ids()
        except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
            print(f"error: tariff catalogue {settings.tariffs_file}: {e}", file=sys.stderr)
            return 2
        if args.tariff_plan not in known:
            print(
                f"error: unknown tariff plan {args.tariff_plan!r}; the catalogue has {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
    cfg = _sim_config(args, tz)
    summary = summarise(make_households(cfg), cfg)
    if not args.dry_run:
        from aiokafka.errors import KafkaError

        try:
            report = asyncio.run(
                run_simulate(
                    settings,
                    cfg,
                    publish_customers=args.publish_customers,
                    with_customer_id=args.with_customer_id,
                    rate=args.rate,
                    out=args.out,
                    progress=args.progress,
                    parts=args.parts,
                    pause_after_history=args.pause_after_history,
                    wait_for_worker=args.wait_for_worker,
                    say=lambda line: print(line, file=sys.stderr, flush=True),
                )
            )
        except KafkaError as e:
            print(f"error: Kafka at {settings.kafka_bootstrap}: {type(e).__name__}: {e}", file=sys.stderr)
            return 3
        where = str(args.out) if args.out else settings.kafka_bootstrap
        sent = ", ".join(f"{n} to {t}" for t, n in report.sent.items())
        for note in report.notes:
            print(note, file=sys.stderr, flush=True)
        verb = "wrote" if args.out else "published"
        done = f"{verb} {report.rows} messages to {where} in {report.seconds:.1f}s: {sent}"
    else:
        done = "dry run: nothing published"
    _print_summary(cfg, summary, as_json=args.json)
    print(done, file=sys.stderr if args.json else sys.stdout)
    return 0


def _print_summary(cfg: Any, summary: Any, *, as_json: bool) -> None:
    if as_json:
        out = {
            "start": cfg.start.isoformat(),
            "seed": cfg.seed,
            "customers": summary.customers,
            "readings": summary.readings,
            "history_rows": summary.history_rows,
            "surges": summary.surges,
            "drops": summary.drops,
            "vacant_in_window": summary.vacancies_in_window,
        }
        print(json.dumps(out, ensure_ascii=False))
        return
    print(
        f"simulation: seed {cfg.seed}, {cfg.days} days from {cfg.start} ({cfg.timezone}), "
        f"every {cfg.interval_s}s"
    )
    for line in summary.lines():
        print(line)
