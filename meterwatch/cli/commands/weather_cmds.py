"""`meterwatch publish-weather`: daily temperatures from a file onto the `weather` topic."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish-weather",
        help="publish daily mean temperatures per region onto the weather topic (docs/weather.md)",
        description="Publish a weather file (CSV region,day,temp_mean_c, or the London Dark Sky "
        "daily export) onto MW_TOPIC_WEATHER, one WeatherDay per region and day, key: region. "
        "Every worker follows the topic; the rules expect the use a customer's temperatures explain.",
    )
    p.add_argument("--file", required=True, type=Path, help="the weather file")
    p.add_argument("--region", help="the region of every row (default: the file's, else '*')")
    p.set_defaults(func=_run)


def weather_days(path: Path, region: str | None) -> list[Any]:
    """The file's days as validated ``WeatherDay`` values, in region and day order.

    A row the contract refuses (an unknown region form, a temperature out of range) is a
    ``ValueError`` naming it: nothing is sent.
    """
    import datetime as dt

    from pydantic import ValidationError

    from meterwatch.cli.weather_file import read_weather
    from meterwatch.contracts import WeatherDay

    temps = read_weather(path, region)
    out = []
    for reg in temps.regions():
        series = temps.series(reg) or {}
        for day in sorted(series):
            row = {"region": reg, "day": dt.date.fromordinal(day), "temp_mean_c": series[day]}
            try:
                out.append(WeatherDay.model_validate(row))
            except ValidationError as exc:
                raise ValueError(f"{path}: {reg} {row['day']}: {exc.errors()[0]['msg']}") from None
    return out


async def publish_weather(settings: Any, days: list[Any]) -> int:
    """Send the days (key: region); returns how many were acknowledged."""
    from meterwatch.cli.publish.producer import Publisher

    async with Publisher(settings) as pub:
        for w in days:
            await pub.send(settings.topic_weather, w.region.encode(), w.model_dump_json().encode())
    return pub.stats.total


def _run(args: argparse.Namespace) -> int:
    from meterwatch.settings import get_settings
    from meterwatch.topics import ensure_topics

    settings = get_settings()
    try:
        days = weather_days(args.file, args.region)
    except ValueError as exc:
        print(f"meterwatch publish-weather: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        await ensure_topics(settings, [settings.topic_weather])
        return await publish_weather(settings, days)

    n = asyncio.run(go())
    print(f"{n} weather days published to {settings.topic_weather}")
    return 0
