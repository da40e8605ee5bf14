"""The baseline snapshot built on read, from the compact state the worker stores.

The worker no longer builds a ``BaselineSnapshot`` per changed customer per
read-model flush (it was half of its CPU): it writes the customer's compact
state (the very bytes of its RocksDB value, ``stream/state.py``: ``p`` the
profile, ``s`` the segment) under ``Keys.state``, and whoever reads a baseline
(the Ops API, the dev scenario) builds the snapshot here, with an engine
configured like the worker's (:func:`load_engine`) and ``now`` = read time.
The bytes are those the worker wrote under ``Keys.baseline`` before
(``Engine.snapshot_parts`` + ``views.snapshot_json``); a snapshot with a
non-finite figure is never built (JSON would carry it as null).

Pure: raw bytes in, JSON bytes out (no Redis here).

>>> import datetime as dt
>>> now = dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
>>> rec = b'{"customer_id":"c1","meter_ids":["m1"],"timezone":"UTC"}'
>>> profile = orjson.dumps(Profile.new("c1").to_dict())
>>> state = b'{"v":2,"p":' + profile + b',"s":{"id":3,"label":"night owls"}}'
>>> body = snapshot_from_state(Engine(), state, rec, now)
>>> orjson.loads(body)["segment"], orjson.loads(body)["processed_at"]
({'id': 3, 'label': 'night owls', 'kind': None}, '2024-05-03T00:00:00Z')
>>> snapshot_from_state(Engine(), state, None, now) is None  # no registry record: no snapshot
True
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.plans import Tariffs
from baselines.profile import Profile
from baselines.rules import RulesConfig
from baselines.views import cycles_json, money_json, snapshot_json
from meterwatch.contracts import CustomerRecord, SegmentRef

if TYPE_CHECKING:
    from meterwatch.settings import Settings

__all__ = [
    "decode_state",
    "finite_snapshot",
    "load_engine",
    "snapshot_bytes",
    "snapshot_from_state",
]

log = logging.getLogger(__name__)


def load_engine(settings: Settings, clock: Callable[[], Any] | None = None) -> Engine:
    """The domain engine, configured from settings (``rules_file``: JSON of RulesConfig;
    ``tariffs_file`` and ``default_tariff_plans``: the tariff catalogue, loaded once here).

    The worker and the readers of its state build theirs here, so both price and judge alike.

    >>> from meterwatch.settings import Settings
    >>> load_engine(Settings(late_window_days=5)).rules.late_window_days
    5
    """
    if settings.rules_file is not None:
        rules = RulesConfig.model_validate_json(settings.rules_file.read_bytes())
    else:
        rules = RulesConfig(late_window_days=settings.late_window_days)
    tariffs = Tariffs.load(settings.tariffs_file, settings.default_tariff_plans)
    return Engine(rules, clock=clock, tariffs=tariffs)


def decode_state(raw: bytes) -> tuple[Profile | None, SegmentRef | None]:
    """The profile and segment of a stored customer value (``stream.state.encode_customer``,
    version 1 or 2); ``ValueError`` when it is not one.

    >>> decode_state(b'{"v":2,"p":null,"s":null,"f":-1}')
    (None, None)
    >>> decode_state(b'{"v":9}')
    Traceback (most recent call last):
    ...
    ValueError: stored customer value of version 9 (this code reads 1 and 2)
    """
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"stored customer value is not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise ValueError("stored customer value is not a JSON object")
    version = d.get("v", 1)
    if version not in (1, 2):
        raise ValueError(f"stored customer value of version {version} (this code reads 1 and 2)")
    segment = SegmentRef.model_validate(d["s"]) if d.get("s") else None
    try:
        profile = Profile.from_dict(d["p"]) if d.get("p") is not None else None
    except (TypeError, KeyError) as exc:
        raise ValueError(f"stored profile unreadable: {type(exc).__name__}: {exc}") from None
    return profile, segment


def finite_snapshot(parts: dict[str, Any]) -> bool:
    """No figure of the snapshot (``Engine.snapshot_parts``) is inf or NaN (JSON would carry it as
    null, breaking the contract).

    >>> import datetime as dt
    >>> eng, now = Engine(), dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
    >>> parts = eng.snapshot_parts(Profile.new("c"), CustomerConfig("c"), None, now, cycles=False)
    >>> finite_snapshot(parts), finite_snapshot({**parts, "recent_daily_kwh": float("nan")})
    (True, False)
    """
    figures = (
        parts["cycle"]["cycle_to_date_kwh"],
        parts["cycle"]["projected_kwh"],
        parts["same_period"]["kwh"],
        parts["baseline"]["daily_kwh"],
        parts["recent_daily_kwh"],
    )
    return all(x is None or math.isfinite(x) for x in figures)


def snapshot_bytes(
    engine: Engine, profile: Profile, config: CustomerConfig, segment: SegmentRef | None, now: dt.datetime
) -> bytes | None:
    """``BaselineSnapshot`` JSON of the customer (None when a figure is not finite), the same bytes
    as ``engine.snapshot(...).model_dump_json()``.

    >>> import datetime as dt
    >>> eng, p, c = Engine(), Profile.new("c1"), CustomerConfig("c1", timezone="UTC")
    >>> now = dt.datetime(2024, 5, 3, tzinfo=dt.UTC)
    >>> snapshot_bytes(eng, p, c, None, now) == eng.snapshot(p, c, None, now).model_dump_json().encode()
    True
    """
    parts = engine.snapshot_parts(profile, config, segment or SegmentRef(), now, cycles=False)
    if not finite_snapshot(parts):
        log.error("snapshot of %s has a non-finite figure; not shown", profile.customer_id)
        return None
    # the closed cycles' JSON written directly, the money's kept with its figures (same bytes)
    money = money_json(profile, parts["money"])
    return snapshot_json({**parts, "money": None}, cycles_json(profile), money)


def snapshot_from_state(
    engine: Engine, state: bytes, record: bytes | str | None, now: dt.datetime
) -> bytes | None:
    """The snapshot of a stored customer value and its registry record (``Keys.customer``), or None:
    no record (deleted, or not applied yet), no profile yet, an unreadable value (logged), or a
    non-finite figure."""
    if record is None:
        return None
    try:
        profile, segment = decode_state(state)
        config = CustomerConfig.from_record(CustomerRecord.model_validate_json(record))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        log.error("stored state of a customer unreadable: %s", exc)
        return None
    if profile is None:
        return None
    return snapshot_bytes(engine, profile, config, segment, now)
