"""A manager's daily digest: ``GET /v1/managers/me/digest`` and ``GET /v1/managers/{manager_id}/digest``.

The day's manager-only alerts, ranked by what is at stake, each marked actionable (pushed on
its own) or folded (listed in the digest); ``?date=`` (ISO date, default: the running day in
``MW_MANAGER_DIGEST_TIMEZONE``). A manager token reads only its own digest (403 otherwise);
``me`` is the token's manager (an ops token names the manager instead).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from meterwatch.auth import TokenRecord
from notifier import dailydigest
from notifier.dailydigest import DailyDigestView
from notifier.deps import ClockDep, Principal, SettingsDep, StoreDep
from notifier.routes.inbox import _check

router = APIRouter(prefix="/v1/managers", tags=["managers"])

DateQuery = Annotated[
    dt.date | None, Query(description="the digest day (ISO date); default: the running day")
]


async def _digest(
    manager_id: str, p: TokenRecord, store: StoreDep, s: SettingsDep, clock: ClockDep, date: dt.date | None
) -> DailyDigestView:
    _check(manager_id, p)
    day = date or dailydigest.today(s, clock.now())
    return await dailydigest.read(store, s, manager_id, day)


@router.get("/me/digest", response_model=DailyDigestView)
async def my_digest(
    p: Principal, store: StoreDep, s: SettingsDep, clock: ClockDep, date: DateQuery = None
) -> DailyDigestView:
    """The calling manager's daily digest (an ops token has no manager: use the manager's id)."""
    if p.role == "ops" or not p.manager_id:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "an ops token names the manager: /v1/managers/{id}/digest"
        )
    return await _digest(p.manager_id, p, store, s, clock, date)


@router.get("/{manager_id}/digest", response_model=DailyDigestView)
async def manager_digest(
    manager_id: str, p: Principal, store: StoreDep, s: SettingsDep, clock: ClockDep, date: DateQuery = None
) -> DailyDigestView:
    """One manager's daily digest (ops may read any manager's)."""
    return await _digest(manager_id, p, store, s, clock, date)
