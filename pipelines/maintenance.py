"""The lake's upkeep: DuckLake's compaction, snapshot expiry and file cleanup, as a scheduled asset.

Only in the DuckLake lane (WAREHOUSE_URL): every load and model rebuild writes Parquet files and a
snapshot, and DuckLake deletes nothing by itself. `lake_maintenance` flushes inlined rows, merges
small files, rewrites files full of deleted rows, expires snapshots older than the retention (time
travel reaches that far back), and deletes the files no snapshot needs once a grace period has
passed (a query started on an older snapshot may still read them). Its metadata holds the file
and snapshot counts before and after, which Dagster plots across runs. A DuckDB file needs none
of this: it has no such asset.

(No `from __future__ import annotations`: Dagster reads the asset's config class from its
signature at definition time.)
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from pipelines.resources import WarehouseResource
from pipelines.settings import Settings


class MaintenanceConfig(dg.Config):
    snapshot_retention_hours: float = Field(
        default=7 * 24, ge=0, description="expire snapshots older than this (time travel's reach)"
    )
    file_grace_hours: float = Field(
        default=24, ge=0, description="delete unreferenced files only once this old"
    )


def build_lake_maintenance(
    settings: Settings,
) -> "tuple[dg.AssetsDefinition, dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition] | None":
    """The maintenance asset, its job and its daily schedule; None for the DuckDB file lane."""
    if not settings.warehouse_url:
        return None

    @dg.asset(
        name="lake_maintenance",
        group_name="maintenance",
        kinds={"ducklake"},
        description=(
            "DuckLake upkeep: flush inlined rows, merge small files, rewrite files with deleted "
            "rows, expire old snapshots, delete files no snapshot needs."
        ),
    )
    def lake_maintenance(
        context: dg.AssetExecutionContext, config: MaintenanceConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.using() as wh:  # the run's connection, closed when the run ends
            counts = wh.maintain(
                snapshot_retention=timedelta(hours=config.snapshot_retention_hours),
                file_grace=timedelta(hours=config.file_grace_hours),
            )
        context.log.info(
            f"lake maintained: {counts['live_data_files_before']} -> {counts['live_data_files']} "
            f"live data files, {counts['snapshots_before']} -> {counts['snapshots']} snapshots"
        )
        return dg.MaterializeResult(metadata=dict(counts))

    job = dg.define_asset_job(
        "lake_maintenance_job",
        selection=dg.AssetSelection.assets(lake_maintenance),
        description="Compact and clean the DuckLake (pipelines/maintenance.py).",
    )
    # at 04:30 local: after the daily sync (settle_minutes past midnight) and its models
    schedule = dg.ScheduleDefinition(
        name="lake_maintenance_daily",
        job=job,
        cron_schedule="30 4 * * *",
        execution_timezone=settings.partitions_timezone,
        description="Compact, expire and clean the DuckLake once a day, after the daily sync.",
    )
    return lake_maintenance, job, schedule
