"""Daily partitions in the configured time zone, the UTC window of each, and their checks."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.jambonz.streams import Window
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


def partitioned_check(
    name: str,
    *,
    asset: str,
    partitions: dg.PartitionsDefinition,
    description: str,
    blocking: bool = False,
) -> dg.AssetCheckSpec:
    """A check evaluated per partition. Partitioned check specs are a Dagster preview feature
    (1.13); we use it on purpose, since a day's checks must speak of that day, so its
    PreviewWarning is silenced here, in one place, rather than in every log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            blocking=blocking,
            partitions_def=partitions,
        )
