"""`meterwatch backtest`: run the stream's rule engine over a file of readings.

Every argument is checked before the input is read (the file can be large): the input
exists, ``--out`` can be written, ``--timezone`` is known, the customers and rules files
parse. The progress bar is on only when stderr is a terminal (``--progress`` forces it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from meterwatch.cli.options import add_progress_option, progress_enabled


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backtest",
        help="run the rule engine over a CSV/Parquet file of readings; write alerts as JSON Lines",
        description=(
            "Run the same rule engine as the stream over a CSV or Parquet file (columns customer_id or "
            "meter_id (or LCLid), ts and kwh or register_kwh; or daily 'day' and 'kwh'/'energy_sum') and "
            "write the alerts as JSON Lines in the Alert schema. No Kafka, no Redis."
        ),
    )
    p.add_argument("--readings", required=True, type=Path, help="CSV or Parquet file of readings")
    p.add_argument("--customers", type=Path, help="CSV or JSON Lines of CustomerRecord fields")
    p.add_argument("--out", required=True, type=Path, help="where to write the alerts (JSON Lines)")
    p.add_argument(
        "--id-column", help="the column naming the customer (default: customer_id, meter_id, LCLid)"
    )
    p.add_argument("--rules", type=Path, help="JSON file of RulesConfig (per tariff / per segment overrides)")
    p.add_argument(
        "--tariffs",
        type=Path,
        help="tariff catalogue JSON (default: MW_TARIFFS_FILE, else the shipped one); prices the alerts",
    )
    p.add_argument(
        "--tariff-plan",
        metavar="ID",
        help="the plan of every customer whose record names none (also customers without a record); "
        "default: MW_DEFAULT_TARIFF_PLANS per tariff category (unset: no money)",
    )
    p.add_argument("--timezone", default="Europe/London", help="for customers without a record")
    p.add_argument(
        "--region",
        help="public-holiday calendar of customers without a record (e.g. GB-ENG, CN): holidays are "
        "no evidence of a surge or drop and stay out of the baseline; default: none",
    )
    p.add_argument(
        "--weather",
        type=Path,
        metavar="FILE",
        help="daily temperatures: CSV region,day,temp_mean_c (region '*': every customer) or the "
        "London Dark Sky daily export; a cold snap an electric-heating home's learned temperature "
        "response explains is no surge (docs/weather.md); default: no weather",
    )
    p.add_argument("--read-day", type=int, default=1, help="for customers without a record (1-28)")
    p.add_argument(
        "--cycle-months", type=int, default=1, choices=(1, 2), help="for customers without a record"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="processes folding customers (default: the CPU count, at most 4; the alerts are the same)",
    )
    add_progress_option(p)
    p.set_defaults(func=_run)


def default_jobs() -> int:
    """The CPU count, at most 4 (more rarely pays: the parent reads the file and joins the results).

    >>> 1 <= default_jobs() <= 4
    True
    """
    return max(1, min(4, os.cpu_count() or 1))


def writable_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as a new or replaced file (None: it can).

    >>> writable_problem(Path("/nonexistent-dir/a.jsonl"))
    'no such directory: /nonexistent-dir'
    """
    if path.is_dir():
        return f"{path} is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"no such directory: {parent}"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{path} is not writable"
    return None


def _tariffs(args: argparse.Namespace, customers: dict[str, Any] | None) -> Any:
    """The catalogue and default plan of the run; every plan named must exist (ValueError)."""
    from pydantic import ValidationError

    from baselines.billing import Tariffs
    from baselines.tariffs import catalogue_or_default
    from meterwatch.settings import get_settings

    path = args.tariffs if args.tariffs is not None else get_settings().tariffs_file
    try:
        catalogue = catalogue_or_default(path)
    except (OSError, ValidationError) as exc:
        raise ValueError(f"--tariffs: {path}: {exc}") from None
    plan = args.tariff_plan
    if plan is not None and plan not in catalogue.ids():
        raise ValueError(f"--tariff-plan: unknown tariff plan {plan!r} (the catalogue has {catalogue.ids()})")
    for rec in (customers or {}).values():
        if rec.tariff_plan is not None and rec.tariff_plan not in catalogue.ids():
            raise ValueError(
                f"--customers: customer {rec.customer_id!r} names unknown tariff plan {rec.tariff_plan!r}"
            )
    if plan is not None:
        return Tariffs(catalogue, dict.fromkeys(("residential", "commercial", "industrial"), plan))
    # as the worker: the defaults per tariff category (MW_DEFAULT_TARIFF_PLANS; empty: no money)
    defaults = get_settings().default_tariff_plans
    unknown = sorted(set(defaults.values()) - set(catalogue.ids()))
    if unknown:
        raise ValueError(
            f"MW_DEFAULT_TARIFF_PLANS: unknown tariff plan(s) {unknown} (the catalogue has {catalogue.ids()})"
        )
    return Tariffs(catalogue, dict(defaults))


def _check_arguments(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(customers, rules, tariffs, weather) after checking every argument; raises ValueError with the
    message."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from baselines.rules import RulesConfig
    from meterwatch.cli.feed import file_format, load_customers

    file_format(args.readings)  # exists, known format
    problem = writable_problem(args.out)
    if problem:
        raise ValueError(f"--out: {problem}")
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--timezone: unknown timezone {args.timezone!r} (e.g. Europe/London)") from None
    if args.jobs < 1:
        raise ValueError("--jobs must be at least 1")
    if args.region is not None:
        from pydantic import TypeAdapter, ValidationError

        from meterwatch.contracts import Region

        try:
            TypeAdapter(Region).validate_python(args.region)
        except ValidationError as exc:
            raise ValueError(f"--region: {exc.errors()[0]['msg']}") from None
    if not 1 <= args.read_day <= 28:
        raise ValueError("--read-day must be 1-28")
    customers = load_customers(args.customers) if args.customers else None
    rules = RulesConfig.model_validate_json(args.rules.read_bytes()) if args.rules else None
    weather = None
    if args.weather is not None:
        from meterwatch.cli.weather_file import read_weather

        weather = read_weather(args.weather)
    return customers, rules, _tariffs(args, customers), weather


def write_alerts(alerts: Iterable[Any], path: Path) -> int:
    """Write alerts as JSON Lines (by alias); returns the count.

    >>> import tempfile, pathlib
    >>> write_alerts([], pathlib.Path(tempfile.mkdtemp()) / "a.jsonl")
    0
    """
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for a in alerts:
            fh.write(a.model_dump_json(by_alias=True))
            fh.write("\n")
            n += 1
    return n


def _run(args: argparse.Namespace) -> int:
    from meterwatch.cli.feed import read_table
    from meterwatch.cli.parallel import run_table_parallel

    try:
        customers, rules, tariffs, weather = _check_arguments(args)
        table = read_table(args.readings)
    except (OSError, ValueError) as exc:
        print(f"meterwatch backtest: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    bar = None
    if progress_enabled(args.progress):
        from tqdm import tqdm

        bar = tqdm(total=table.num_rows, unit="rows", unit_scale=True, desc="backtest", file=sys.stderr)
    try:
        res = run_table_parallel(
            table,
            jobs=args.jobs,
            customers=customers,
            rules=rules,
            timezone=args.timezone,
            read_day=args.read_day,
            cycle_months=args.cycle_months,
            region=args.region,
            id_column=args.id_column,
            progress=bar.update if bar is not None else None,
            tariffs=tariffs,
            weather=weather,
        )
    except ValueError as exc:
        print(f"meterwatch backtest: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    n = write_alerts(res.alerts, args.out)
    elapsed = time.perf_counter() - t0
    print(res.summary())
    print(
        f"{n} alerts written to {args.out} in {elapsed:.1f} s ({res.rows / max(elapsed, 1e-9):,.0f} rows/s)"
    )
    return 0
