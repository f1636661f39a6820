"""When `calls` is stale: yesterday not synced by SYNC_SETTLE_MINUTES plus a margin after midnight.

A stopped sync loses calls only once jambonz's retention passes, so the first sign must come
long before: every day, at the deadline, the check fails unless the newest complete day (the
partition that ended at local midnight) has been materialized. It is Dagster's time-partition
freshness check, evaluated by its sensor (on by default), and shows on the asset in the UI.

Why a check on the newest partition rather than a freshness policy: a policy judges when the
asset was last materialized, any partition, so a backfill of an old day would make it look fresh
while yesterday is missing; the check asks about the day that matters.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from pipelines.settings import Settings

LAST_MINUTE = 23 * 60 + 59


def deadline_minutes(settings: Settings) -> int:
    """Minutes after local midnight by which yesterday must be in the warehouse."""
    return min(settings.settle_minutes + settings.freshness_margin_minutes, LAST_MINUTE)


def build_freshness(
    settings: Settings, calls: dg.AssetsDefinition
) -> tuple[Sequence[dg.AssetChecksDefinition], dg.SensorDefinition]:
    minutes = deadline_minutes(settings)
    # Dagster marks these superseded by freshness policies, which cannot say what we mean (see
    # above): the warning is silenced here, in one place, rather than in every log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        checks = dg.build_time_partition_freshness_checks(
            assets=[calls],
            deadline_cron=f"{minutes % 60} {minutes // 60} * * *",
            timezone=settings.partitions_timezone,
            severity=dg.AssetCheckSeverity.ERROR,
        )
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name="calls_freshness",
            minimum_interval_seconds=300,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
    return checks, sensor
