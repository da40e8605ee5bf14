"""The backtest across processes: customers in chunks, the same alerts in the same order.

The engine is per customer (a customer's alerts depend only on its own readings, its
record and the rules), so chunks of customers can run in separate processes and their
results be joined in customer order: the alert file is the same, byte for byte, as
one process writes (``BacktestResult.merge``). The parent reads the file and cuts the
customers' series; ``jobs`` worker processes (started with ``spawn``: no fork of a
process that runs pyarrow's threads) fold them. At most ``2 x jobs`` chunks are in
flight, so memory stays bounded by the chunks, not the file.

>>> from meterwatch.cli.feed import table_from_pydict
>>> t = table_from_pydict({"customer_id": ["c"] * 30, "day": [f"2024-01-{d:02d}" for d in range(1, 31)],
...                        "kwh": [4.0] * 30})
>>> r = run_table_parallel(t, jobs=1)
>>> r.rows, r.customer_cycles, r.alerts
(30, 1, [])
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from baselines.backtest import BacktestResult, Series, run_customers
from meterwatch.cli.feed import iter_customers, run_table

# customers per task: big enough that pickling and scheduling are noise, small enough to balance
CHUNK_ROWS = 50_000

_worker_kwargs: dict[str, Any] = {}


def _init(kwargs: dict[str, Any]) -> None:
    _worker_kwargs.clear()
    _worker_kwargs.update(kwargs)


def _run_chunk(chunk: list[tuple[str, Series]]) -> BacktestResult:
    return run_customers(chunk, **_worker_kwargs)


Chunk = list[tuple[str, Series]]


def chunks(series: Iterable[tuple[str, Series]], rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Consecutive customers, grouped into lists of about ``rows`` rows (a customer is never split).

    >>> s = [(c, Series("daily", value=[1.0] * 3, day=[0, 1, 2])) for c in "abcde"]
    >>> [[cid for cid, _ in ch] for ch in chunks(s, rows=6)]
    [['a', 'b'], ['c', 'd'], ['e']]
    """
    out: Chunk = []
    n = 0
    for item in series:
        out.append(item)
        n += len(item[1])
        if n >= rows:
            yield out
            out, n = [], 0
    if out:
        yield out


def run_table_parallel(
    table: Any,
    *,
    jobs: int,
    id_column: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    **kwargs: Any,
) -> BacktestResult:
    """``run_table`` over ``jobs`` processes; the same result.

    In this process when ``jobs`` <= 1 or the table has fewer than two chunks of rows
    (starting processes would cost more than it saves). ``kwargs``: ``run_customers``'
    keyword arguments (customers, rules, timezone, ...).
    """
    if jobs <= 1 or table.num_rows < 2 * chunk_rows:
        return run_table(table, id_column=id_column, progress=progress, **kwargs)
    res = BacktestResult()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(kwargs,)) as pool:
        pending: deque[tuple[int, Future[BacktestResult]]] = deque()
        for chunk in chunks(iter_customers(table, id_column), chunk_rows):
            pending.append((sum(len(s) for _, s in chunk), pool.submit(_run_chunk, chunk)))
            if len(pending) >= 2 * jobs:
                _join(res, pending.popleft(), progress)
        while pending:
            _join(res, pending.popleft(), progress)
    return res


def _join(
    res: BacktestResult, item: tuple[int, Future[BacktestResult]], progress: Callable[[int], None] | None
) -> None:
    rows, fut = item
    res.merge(fut.result())
    if progress is not None:
        progress(rows)
