"""Daily partitions in the configured time zone, and the UTC window of each partition."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.jambonz.client import Window
from pipelines.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start_date,
        timezone=settings.partitions_timezone,
        end_offset=0,
    )


def day_window(day: date, tz: str) -> Window:
    """[local midnight of day, local midnight of the next day) in UTC: 23 or 25 hours at DST."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def partition_day(partition_key: str) -> date:
    return date.fromisoformat(partition_key)
