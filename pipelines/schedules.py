"""The daily schedule: fill each day once it has ended and settled, and re-sync a few before it.

jambonz writes a call when it ends, stamped with its start: a call from 23:50 to 00:20 appears in
yesterday's window only after 00:20 (plus ~20 s of buffering). So the schedule ticks `settle`
after local midnight and requests the day that just ended plus the `lookback` days before it.
Re-syncs are idempotent upserts; the days' models follow.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.settings import Settings


def days_for_tick(tick: datetime, settings: Settings) -> list[date]:
    """The partitions a tick requests, oldest first: the day that ended, and lookback before it."""
    local = tick.astimezone(ZoneInfo(settings.partitions_timezone))
    ended = (local - timedelta(minutes=settings.settle_minutes)).date() - timedelta(days=1)
    first = date.fromisoformat(settings.partitions_start_date)
    days = [ended - timedelta(days=n) for n in range(settings.lookback_days, -1, -1)]
    return [d for d in days if d >= first]


def build_schedule(
    job: dg.UnresolvedAssetJobDefinition, settings: Settings
) -> dg.ScheduleDefinition:
    minute, hour = settings.settle_minutes % 60, settings.settle_minutes // 60

    @dg.schedule(
        name="daily_calls_sync",
        job=job,
        cron_schedule=f"{minute} {hour} * * *",
        execution_timezone=settings.partitions_timezone,
        description=(
            f"{settings.settle_minutes} min after local midnight ({settings.partitions_timezone}): "
            f"sync the day that ended and re-sync the {settings.lookback_days} days before it."
        ),
    )
    def daily_calls_sync(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        tick = context.scheduled_execution_time
        days = days_for_tick(tick, settings)
        newest = days[-1] if days else None
        return [
            dg.RunRequest(
                run_key=f"{d.isoformat()}@{tick.date().isoformat()}",
                partition_key=d.isoformat(),
                tags={"jambonz/sync": "settled" if d == newest else "lookback"},
            )
            for d in days
        ]

    return daily_calls_sync
