"""The `alerts` asset: jambonz's alerts of a day, synced as `calls` is, by the same path.

jambonz writes an alert for what never becomes a call record, above all the calls it refused at
the account's or the service provider's call limit (`account-call-limit`,
`service-provider-call-limit`), and for webhook, speech and carrier failures. Its web portal
shows them only while it keeps them; here each daily partition syncs the window [local
midnight, next local midnight) of the Alerts route (account or service provider, the scope
`calls` uses) into the table `alerts`: the same pager (pacing in the run's one bucket, retries,
completeness against `total`, repair), normalizer and loader as calls, the stream's spec
being `streams.ALERTS`. Its blocking checks: complete against `total`, key unique. In a run it
comes after `calls` (a dependency of order: see the spec's deps).
"""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg

from pipelines.calls import DaySource, complete_outcome, sync_day
from pipelines.days import BACKFILL_POLICY, DayResult, materialize_days
from pipelines.jambonz.streams import ALERTS, Window
from pipelines.partitions import partitioned_check
from pipelines.resources import JambonzResource, WarehouseResource
from pipelines.settings import Settings
from pipelines.sync import SyncResult
from warehouse.checks import CheckOutcome
from warehouse.database import Warehouse

ALERT_CHECKS: dict[str, str] = {
    "alerts_complete": (
        "Every alert the API returned for the window (after in-window filtering) is in `alerts` "
        "or in `alerts_quarantine`."
    ),
    "alert_key_unique": "alert_key is unique across `alerts`.",
}


def _alert_outcomes(
    wh: Warehouse, window: Window, synced: SyncResult, rows: int
) -> list[CheckOutcome]:
    counts = {
        "loaded": synced.loaded,
        "in_window": synced.in_window,
        "quarantined": synced.quarantined,
    }
    return [
        complete_outcome(wh, "alerts_complete", window, **counts),
        wh.check("alert_key_unique", start=window.start, end=window.end),
    ]


ALERTS_SOURCE = DaySource(ALERTS, _alert_outcomes)


def build_alerts_asset(
    settings: Settings, partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    specs = [
        partitioned_check(
            name, asset="alerts", partitions=partitions, description=desc, blocking=True
        )
        for name, desc in ALERT_CHECKS.items()
    ]

    # a multi_asset of one asset, as `calls` (can_subset: a range's check results are per day)
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "alerts",
                group_name="jambonz",
                kinds={"duckdb", "python"},
                description=(
                    "One row per jambonz alert (alert_key: its time to the nanosecond and its "
                    "tags), upserted by day window from jambonz Alerts; never deleted. Calls "
                    "refused at a call limit are among them. Columns: docs/models.md "
                    "'The alerts table'."
                ),
                partitions_def=partitions,
                # an order, not data: in a run, calls go first and alerts only after them, so
                # a refused key or a server down fails once (not once per stream) and the
                # shared bucket is spent on calls first
                deps=["calls"],
            )
        ],
        name="alerts",
        partitions_def=partitions,
        backfill_policy=BACKFILL_POLICY,
        check_specs=specs,
        can_subset=True,
    )
    def alerts(
        context: dg.AssetExecutionContext,
        jambonz: JambonzResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        def one_day(day: date) -> DayResult:
            return sync_day(context, settings, jambonz, warehouse, day, ALERTS_SOURCE)

        yield from materialize_days(
            context, settings, "alerts", one_day, blocking=tuple(ALERT_CHECKS)
        )

    return alerts
