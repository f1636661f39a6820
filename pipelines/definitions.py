"""The code location: merges assets, checks, the job, the schedule, sensors and resources.

Loads with no environment set (the UI must open on a fresh checkout): missing credentials fail a
run at its first step, naming the variable, not the load.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

from pipelines.alerts import build_alerts_asset
from pipelines.calls import build_calls_asset
from pipelines.dead_runs import dead_runs_sensor
from pipelines.freshness import build_freshness
from pipelines.intraday import build_intraday
from pipelines.maintenance import build_lake_maintenance
from pipelines.models import MODELS, UPSTREAM, build_model_asset
from pipelines.notify import build_alert_sensor, build_notify_sensor
from pipelines.partitions import daily_partitions
from pipelines.resources import JambonzResource, WarehouseResource
from pipelines.schedules import build_schedule
from pipelines.settings import Settings, settings_and_problems


def build_definitions(settings: Settings, problems: Sequence[str] = ()) -> dg.Definitions:
    """Everything Dagster loads. `problems`: settings that could not be used (their defaults
    stand in), each run's first step fails naming them (settings.settings_and_problems)."""
    problem = "; ".join(problems) or None
    partitions = daily_partitions(settings)
    calls = build_calls_asset(settings, partitions)
    alerts = build_alerts_asset(settings, partitions)
    sources = {"calls": calls, "alerts": alerts}
    models = [
        build_model_asset(name, settings, partitions, sources[UPSTREAM.get(name, "calls")])
        for name in MODELS
    ]
    freshness_checks, freshness_sensor = build_freshness(settings, calls)
    daily_sync = dg.define_asset_job(
        "daily_sync",
        # the freshness check runs on its own deadline (its sensor), not after every sync
        selection=dg.AssetSelection.assets(calls, alerts, *models)
        - dg.AssetSelection.checks(*freshness_checks),
        description="Sync a day of calls and alerts, check them, and rebuild that day's models.",
    )
    lake = build_lake_maintenance(settings)  # the DuckLake lane only
    calls_today, intraday_sync, intraday_sensor = build_intraday(settings)
    return dg.Definitions(
        assets=[calls, alerts, *models, calls_today, *([lake[0]] if lake else [])],
        asset_checks=freshness_checks,
        jobs=[daily_sync, intraday_sync, *([lake[1]] if lake else [])],
        schedules=[build_schedule(daily_sync, settings), *([lake[2]] if lake else [])],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                "models_follow_calls",
                target=dg.AssetSelection.assets(*models),
                default_status=dg.DefaultSensorStatus.RUNNING,
            ),
            dead_runs_sensor,
            build_alert_sensor(),
            build_notify_sensor(),
            freshness_sensor,
            *([intraday_sensor] if intraday_sensor else []),
        ],
        resources={
            "jambonz": JambonzResource(
                base_url=settings.base_url,
                # unset: the first step says so in the project's words, not Dagster's traceback
                api_key=dg.EnvVar("JAMBONZ_API_KEY") if "JAMBONZ_API_KEY" in os.environ else "",
                account_sid=settings.account_sid,
                service_provider_sid=settings.service_provider_sid,
                reserve=settings.rate_limit_reserve,
                settings_problem=problem,
            ),
            "warehouse": WarehouseResource(
                path=settings.warehouse_path,
                url=settings.warehouse_url,
                data_path=settings.warehouse_data_path,
                lock_timeout_s=settings.warehouse_lock_timeout_s,
                memory_limit=settings.warehouse_memory_limit,
                settings_problem=problem,
            ),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(*settings_and_problems())
