"""Today's calls as they happen: `calls_today` re-syncs the current local day, provisionally.

jambonz writes a call when it ends, so today's window fills all day. Every `SYNC_INTRADAY_MINUTES`
(default 15; 0 turns the sensor off) the `intraday_calls_sync` sensor asks for one run of
`calls_today`, which syncs today's window with the same upsert as a day of `calls` (calls that
ended since the last tick arrive; nothing is doubled), records the sync in `calls_day_syncs` as
provisional (the view `calls_days`), and rebuilds today's rows of every model of calls, whose
`complete` column then says false. The fraud checks (pipelines/fraud.py) run on today's calls
as they stand, as checks of `calls_today` (WARN): a Wangiri burst at 14:00 is told by the 14:15
tick (pipelines/notify.py), not at the night's run, which does not send it again. The daily
schedule's run of the day, SYNC_SETTLE_MINUTES after it ended, makes it final.

Why an asset of its own rather than today's partition of `calls`: a day's partition of `calls`
is materialized only by a sync of the whole day, so the freshness check ("yesterday's partition
is in by the deadline") cannot be satisfied by a provisional sync of the evening before; and the
partition view shows final days, today being the latest materialization of `calls_today`, whose
metadata names the day and says `provisional`.

It never overlaps itself: a tick while a run of `intraday_sync` is queued or in progress is
skipped, and the tick's reason (in the UI's sensor view) names that run. Its requests go through
the same client as every other sync, paced on the server's RateLimit headers with the reserve
left for the operator's web UI (pipelines/jambonz/pacing.py).
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.calls import BLOCKING, sync_day
from pipelines.days import check_result
from pipelines.fraud import CHECKS
from pipelines.models import CALL_MODELS, MODEL_CHECKS, rebuild_day
from pipelines.resources import JambonzResource, WarehouseResource
from pipelines.settings import Settings

JOB = "intraday_sync"
SENSOR = "intraday_calls_sync"
TAG = "jambonz/sync"
# a run of the job in one of these is still syncing: a tick then waits for it
IN_PROGRESS = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


class IntradayConfig(dg.Config):
    """day: the local day to sync (YYYY-MM-DD); empty: today in PARTITIONS_TIMEZONE."""

    day: str = ""


def local_day(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def build_calls_today(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name="calls_today",
        group_name="jambonz",
        kinds={"duckdb", "python"},
        # the fraud checks on today's calls, provisional (their daily run: fraud_findings')
        check_specs=[
            dg.AssetCheckSpec(name, asset="calls_today", description=description, blocking=False)
            for name, description in MODEL_CHECKS["fraud_findings"]
        ],
        description=(
            "Today's calls so far, re-synced every SYNC_INTRADAY_MINUTES into `calls` (the same "
            "upsert) with today's model rows; provisional until the daily run after "
            "SYNC_SETTLE_MINUTES (calls_days.complete, the models' `complete`)."
        ),
    )
    def calls_today(
        context: dg.AssetExecutionContext,
        config: IntradayConfig,
        jambonz: JambonzResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        try:
            day = (
                date.fromisoformat(config.day)
                if config.day
                else local_day(datetime.now(UTC), settings.partitions_timezone)
            )
        except ValueError:
            raise dg.Failure(
                description=f"calls_today: config day={config.day!r} is not YYYY-MM-DD"
            ) from None
        metadata, outcomes = sync_day(context, settings, jambonz, warehouse, day)
        failed = [o for o in outcomes if not o.passed and o.name in BLOCKING]
        if failed:  # today's models are left as they were; the next tick tries again
            raise dg.Failure(
                description=f"calls_today {day}: "
                + "; ".join(f"{o.name}: {o.violations} violations {o.sample}" for o in failed),
                metadata=metadata,
            )
        models, fraud = {}, []
        for name in CALL_MODELS:
            models[name], found = rebuild_day(name, settings, warehouse, day)
            if name == "fraud_findings":
                fraud = found
        yield dg.MaterializeResult(
            metadata={
                "day": day.isoformat(),
                **metadata,
                "checks_failed": ", ".join(o.name for o in outcomes if not o.passed) or "none",
                **{f"{name}_rows": m["dagster/row_count"] for name, m in models.items()},
            }
        )
        for outcome in fraud:  # provisional: today's calls so far
            outcome.metadata["provisional"] = True
            yield check_result("calls_today", outcome, day.isoformat(), warn=outcome.name in CHECKS)

    return calls_today


def tick(instance: dg.DagsterInstance, now: datetime, tz: str) -> dg.RunRequest | dg.SkipReason:
    """What one tick of the sensor does at `now`: a run of today, or why not."""
    busy = instance.get_run_records(
        dg.RunsFilter(job_name=JOB, statuses=list(IN_PROGRESS)), limit=1
    )
    if busy:
        run = busy[0].dagster_run
        since = busy[0].create_timestamp.astimezone(UTC)
        return dg.SkipReason(
            f"the intra-day sync of {run.tags.get('jambonz/day', '?')} (run {run.run_id[:8]}, "
            f"{run.status.value.lower()} since {since:%H:%M:%S} UTC) is still running: this "
            "tick is skipped so that two never overlap"
        )
    day = local_day(now, tz).isoformat()
    return dg.RunRequest(
        run_config={"ops": {"calls_today": {"config": {"day": day}}}},
        tags={TAG: "intraday", "jambonz/day": day},
    )


def build_intraday(
    settings: Settings,
) -> tuple[dg.AssetsDefinition, "dg.UnresolvedAssetJobDefinition", dg.SensorDefinition | None]:
    """The asset, its job, and the sensor (None when SYNC_INTRADAY_MINUTES is 0)."""
    asset = build_calls_today(settings)
    job = dg.define_asset_job(
        JOB, selection=[asset], description="Re-sync today's calls and model rows (provisional)."
    )
    if settings.intraday_minutes == 0:
        return asset, job, None
    tz = settings.partitions_timezone

    @dg.sensor(
        name=SENSOR,
        job=job,
        minimum_interval_seconds=settings.intraday_minutes * 60,
        # off until turned on, as the daily schedule: in the UI or `dagster sensor start`
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Every {settings.intraday_minutes} min: re-sync today ({tz}) into the warehouse, "
            "provisionally; skipped while the previous intra-day sync still runs."
        ),
    )
    def intraday_calls_sync(context: dg.SensorEvaluationContext) -> Any:
        return tick(context.instance, datetime.now(UTC), tz)

    return asset, job, intraday_calls_sync
