"""The log filters of meterwatch.logs: masked phones, repeated records rate-limited (no I/O)."""

from __future__ import annotations

import io
import logging

import pytest

from meterwatch.logs import MaskingFilter, RepeatFilter, install_repeat_filter, setup_logging


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _logger(name: str, flt: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(flt)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, out


def test_a_flood_of_one_cause_gives_one_line_per_interval_with_the_count() -> None:
    clock = Clock()
    log, out = _logger("t.flood", RepeatFilter(interval_s=30.0, clock=clock))
    # 250 errors a second for 70 s (a broker outage as aiokafka logs it), node ids varying
    for i in range(250 * 70):
        clock.t = 1000.0 + i / 250
        log.error("Unable connect to node with id %s: %s", i % 3, "[Errno 111] Connect call failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # at 0 s, 30 s and 60 s
    assert "similar suppressed" not in lines[0]
    assert lines[1].endswith("[7499 similar suppressed in the last 30s]")
    assert lines[2].endswith("[7499 similar suppressed in the last 30s]")


def test_different_causes_and_info_lines_are_not_held_back() -> None:
    clock = Clock()
    log, out = _logger("t.causes", RepeatFilter(interval_s=30.0, clock=clock))
    for _ in range(5):
        log.warning("redis unavailable (%s)", "ConnectionError")
        log.warning("kafka unavailable (%s)", "KafkaConnectionError")
        log.info("sms %s sent to %s", "n_1", "+86*******8000")  # per-event lines stay
        try:
            raise ValueError("x")
        except ValueError:
            log.exception("dispatcher failed")
        try:
            raise KeyError("x")
        except KeyError:
            log.exception("dispatcher failed")  # another exception type: another cause
    text = out.getvalue()
    assert text.count("redis unavailable") == 1 and text.count("kafka unavailable") == 1
    assert text.count("sms n_1 sent") == 5
    assert text.count("ERROR t.causes: dispatcher failed") == 2


def test_turned_off_with_a_zero_interval() -> None:
    log, out = _logger("t.off", RepeatFilter(interval_s=0))
    for _ in range(4):
        log.error("same")
    assert out.getvalue().count("same") == 4


def test_remembers_a_bounded_number_of_causes() -> None:
    flt = RepeatFilter(interval_s=30.0, clock=Clock(), max_causes=10)
    for i in range(100):
        rec = logging.LogRecord("t", logging.ERROR, "f", 1, f"cause {i}", None, None)
        assert flt.filter(rec)
    assert len(flt._seen) == 10


def test_setup_logging_masks_and_rate_limits_and_the_worker_can_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        monkeypatch.setenv("MW_LOG_REPEAT_INTERVAL_S", "12.5")
        from meterwatch.settings import get_settings

        get_settings.cache_clear()
        setup_logging("INFO")
        (handler,) = root.handlers
        kinds = {type(f) for f in handler.filters}
        assert kinds == {RepeatFilter, MaskingFilter}
        assert next(f for f in handler.filters if isinstance(f, RepeatFilter)).interval_s == 12.5
        # a process whose logging someone else set up (Faust) installs it on its handlers
        other = logging.StreamHandler(io.StringIO())
        root.handlers[:] = [other]
        flt = install_repeat_filter(5.0)
        assert other.filters == [flt] and flt.interval_s == 5.0
        install_repeat_filter(5.0)
        assert len(other.filters) == 1  # idempotent
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        from meterwatch.settings import get_settings

        get_settings.cache_clear()


def test_a_summarised_record_keeps_tuple_args_for_formatters_that_rewrite_them() -> None:
    """Faust's (mode's) formatter maps each of ``record.args`` through its own formatting and wraps
    a non-tuple in a tuple: a summary with ``args = None`` raised "not all arguments converted"
    in every worker log line that carried a count."""

    class ArgsRewriting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if not isinstance(record.args, tuple):
                record.args = (record.args,)
            record.args = tuple(str(a) for a in record.args)
            return super().format(record)

    clock = Clock()
    flt = RepeatFilter(interval_s=30.0, clock=clock)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(flt)
    handler.setFormatter(ArgsRewriting("%(levelname)s %(message)s"))
    log = logging.getLogger("t.rewrite")
    log.handlers[:] = [handler]
    log.propagate = False
    for i in range(3):
        clock.t = 1000.0 + i * 20
        log.error("Unable connect to node with id %s: %s", 1, "refused")
    assert out.getvalue().splitlines() == [
        "ERROR Unable connect to node with id 1: refused",
        "ERROR Unable connect to node with id 1: refused [1 similar suppressed in the last 40s]",
    ]
