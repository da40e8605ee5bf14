"""`meterwatch backtest`: run the stream's rule engine over a file of readings."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


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
    p.add_argument("--timezone", default="Europe/London", help="for customers without a record")
    p.add_argument("--read-day", type=int, default=1, help="for customers without a record (1-28)")
    p.add_argument(
        "--cycle-months", type=int, default=1, choices=(1, 2), help="for customers without a record"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from baselines.backtest import load_customers, read_table, run_table, write_alerts
    from baselines.rules import RulesConfig

    try:
        table = read_table(args.readings)
        customers = load_customers(args.customers) if args.customers else None
        rules = RulesConfig.model_validate_json(args.rules.read_bytes()) if args.rules else None
        if not 1 <= args.read_day <= 28:
            raise ValueError("--read-day must be 1-28")
    except (OSError, ValueError) as exc:
        print(f"meterwatch backtest: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=table.num_rows, unit="rows", unit_scale=True, desc="backtest", file=sys.stderr)
    try:
        res = run_table(
            table,
            customers=customers,
            rules=rules,
            timezone=args.timezone,
            read_day=args.read_day,
            cycle_months=args.cycle_months,
            id_column=args.id_column,
            progress=bar.update if bar is not None else None,
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
