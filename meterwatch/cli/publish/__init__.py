"""Publishers: put history, recorded readings and synthetic data on Kafka.

* :mod:`.readers` turns the rows of a CSV/Parquet file (read by :mod:`meterwatch.cli.feed`)
  into validated ``HistoryRow`` (``meterwatch bootstrap``) and ``MeterReading``
  (``meterwatch replay``) values, or a :class:`Rejected` with its reason;
* :mod:`.producer` sends ``(topic, key, value)`` with one aiokafka producer (acks=all,
  idempotent, batched with linger), optionally paced, with a progress bar;
* :mod:`.files` publishes a file (``run_bootstrap``, ``run_replay``);
* :mod:`.simulation` publishes a simulation (``run_simulate``);
* :mod:`.worker_wait` waits until a running worker has consumed a topic.

A row that does not validate is reported (row number, reason, the raw row): nothing is
dropped silently.
"""

from __future__ import annotations

from meterwatch.cli.feed import InputError, count_rows
from meterwatch.cli.publish.files import run_bootstrap, run_replay
from meterwatch.cli.publish.producer import Pacer, Publisher, PublishStats, ReplayClock, RunReport, json_bytes
from meterwatch.cli.publish.readers import Rejected, read_history, read_readings, reading_json
from meterwatch.cli.publish.simulation import SIM_PARTS, run_simulate, simulation_messages
from meterwatch.cli.publish.worker_wait import group_members, wait_until_consumed

__all__ = [
    "SIM_PARTS",
    "InputError",
    "Pacer",
    "PublishStats",
    "Publisher",
    "Rejected",
    "ReplayClock",
    "RunReport",
    "count_rows",
    "group_members",
    "json_bytes",
    "read_history",
    "read_readings",
    "reading_json",
    "run_bootstrap",
    "run_replay",
    "run_simulate",
    "simulation_messages",
    "wait_until_consumed",
]
