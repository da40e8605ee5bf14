"""`meterwatch simulate`: publish a simulation (or write it as JSON Lines)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from meterwatch.cli.publish.producer import Pacer, Publisher, RunReport, json_bytes, progress_bar
from meterwatch.cli.publish.worker_wait import wait_until_consumed
from meterwatch.settings import Settings

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
            record = json_bytes(h.customer_record(cfg.timezone, cfg.tariff_plan))
            yield settings.topic_customers, h.customer_id.encode(), record
    if "history" in wanted:
        for row in generate_history(households, cfg):
            yield settings.topic_history, row["customer_id"].encode(), json_bytes(row)
    if "readings" in wanted:
        for r in generate_readings(households, cfg, with_customer_id=with_customer_id):
            yield settings.topic_readings, r["meter_id"].encode(), json_bytes(r)


def _write_messages(out: Path, msgs: Iterable[tuple[str, bytes, bytes]], report: RunReport, bar: Any) -> None:
    with out.open("w", encoding="utf-8") as fh:
        for topic, key, value in msgs:
            fh.write(json.dumps({"topic": topic, "key": key.decode(), "value": json.loads(value)}) + "\n")
            report.sent[topic] = report.sent.get(topic, 0) + 1
            report.rows += 1
            bar.update(1)


async def _let_the_worker_load_history(
    settings: Settings,
    pause_s: float,
    wait_for_worker_s: float,
    report: RunReport,
    say: Callable[[str], None] | None,
) -> None:
    if pause_s > 0:
        await asyncio.sleep(pause_s)
    if wait_for_worker_s > 0:
        _, note = await wait_until_consumed(
            settings, settings.topic_history, wait_for_worker_s, say=say or (lambda _: None)
        )
        report.notes.append(note)


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
    say: Callable[[str], None] | None = None,
) -> RunReport:
    """Publish a simulation (or, with ``out``, write it as JSON Lines ``{topic, key, value}``).

    (Over 60 lines with its docstring: one loop over the messages, with the history pause.)

    ``rate`` > 0 limits readings per second (customers and history go unpaced).
    ``parts`` selects what to publish; ``pause_after_history`` waits (seconds) between the
    history and the first reading, so that a running worker has loaded the history first;
    ``wait_for_worker`` (seconds, at most) instead waits until the worker's consumer group
    has consumed the history topic to its end (given up after 15 s when no worker is running);
    ``say`` gets the lines of that wait as they happen.
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
    bar = progress_bar(total, "simulate", progress)
    msgs = simulation_messages(settings, cfg, publish_customers, with_customer_id, parts)
    try:
        if out is not None:
            _write_messages(out, msgs, report, bar)
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
                        await _let_the_worker_load_history(
                            settings, pause_after_history, wait_for_worker, report, say
                        )
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
