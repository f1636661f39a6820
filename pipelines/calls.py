"""The `calls` asset: one daily partition = one window synced, normalized and upserted.

Each partition reads its window [local midnight, next local midnight) through the RecentCalls
client, normalizes the records into the calls table's Arrow schema, and upserts them into DuckDB in
one transaction. Checks of the partition are evaluated in the same step, right after the load, so
they see exactly what the load wrote; the blocking ones (completeness, key uniqueness) keep the
day's models from being rebuilt when they fail. A run of a range of days (a backfill) does each day
so, on its own (pipelines/days.py).
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from pipelines.days import BACKFILL_POLICY, DayResult, materialize_days
from pipelines.jambonz.errors import (
    IncompleteWindowError,
    JambonzError,
    JambonzUnavailableError,
    JambonzUnreachableError,
)
from pipelines.jambonz.pager import WindowResult
from pipelines.jambonz.streams import RECENT_CALLS, Scope, Stream, Window
from pipelines.partitions import day_window, partitioned_check
from pipelines.resources import JambonzResource, WarehouseResource
from pipelines.retries import TransientFailure
from pipelines.settings import Settings
from pipelines.sync import SyncResult, load_stream
from warehouse.checks import CheckOutcome
from warehouse.database import Warehouse
from warehouse.lake import LakeLockError
from warehouse.load import WarehouseConflictError

# check name -> description; BLOCKING ones keep the day's models from being rebuilt when they
# fail, WARNINGS have severity WARN (the rest ERROR)
CALL_CHECKS: dict[str, str] = {
    "calls_complete": (
        "Every call the API returned for the window (after in-window filtering) is in `calls` "
        "or in `calls_quarantine`."
    ),
    "call_key_unique": "call_key is unique across `calls`.",
    "timestamps_ordered": "attempted_at <= answered_at <= terminated_at where present.",
    "duration_consistent": (
        "duration >= 0, 0 when unanswered, within a second of terminated_at - answered_at."
    ),
    "answered_sip_200": "Answered calls have sip_status 200.",
    "nothing_quarantined": (
        "No record of the window was quarantined (see calls_quarantine for reasons)."
    ),
    "api_still_has_window": (
        "The API still returns calls for a window the warehouse holds: a total of 0 where the "
        "warehouse has calls means jambonz forgot them (nothing was deleted here)."
    ),
}
BLOCKING = ("calls_complete", "call_key_unique")
WARNINGS = ("nothing_quarantined", "api_still_has_window")
SQL_CHECKS = ("call_key_unique", "timestamps_ordered", "duration_consistent", "answered_sip_200")


def complete_outcome(
    wh: Warehouse, name: str, window: Window, *, loaded: int, in_window: int, quarantined: int
) -> CheckOutcome:
    """Check `name` (warehouse/checks/<name>.sql: the keys the load wrote are in the table) and
    the count: every record the API returned for the window loaded or was quarantined."""
    complete = wh.check(name, start=window.start, end=window.end)
    shortfall = in_window - (loaded + quarantined)
    return CheckOutcome(
        name,
        complete.violations + abs(shortfall),
        complete.sample + ([f"shortfall {shortfall}"] if shortfall else []),
    )


def evaluate_call_checks(
    wh: Warehouse,
    window: Window,
    *,
    loaded: int,
    in_window: int,
    quarantined: int,
    api_total: int,
    rows_in_window: int,
) -> list[CheckOutcome]:
    """Every check of CALL_CHECKS for one window, after its load. Pure over the warehouse."""
    counts = {"loaded": loaded, "in_window": in_window, "quarantined": quarantined}
    outcomes = [complete_outcome(wh, "calls_complete", window, **counts)]
    outcomes += [wh.check(n, start=window.start, end=window.end) for n in SQL_CHECKS]
    outcomes.append(CheckOutcome("nothing_quarantined", quarantined, []))
    forgotten = rows_in_window if api_total == 0 and rows_in_window > 0 else 0
    outcomes.append(
        CheckOutcome(
            "api_still_has_window",
            forgotten,
            [f"API total 0; warehouse holds {rows_in_window} calls"] if forgotten else [],
        )
    )
    return outcomes


def _metadata(
    scope: Scope, window: Window, synced: SyncResult, rows: int, started: float
) -> dict[str, Any]:
    result, load = synced.fetch, synced.load
    return {
        "dagster/row_count": rows,
        "scope": f"{scope.kind} {scope.sid}",
        "window_start_utc": window.start.isoformat(),
        "window_end_utc": window.end.isoformat(),
        "inserted": load.inserted,
        "updated": load.updated,
        "unchanged": load.unchanged,
        "quarantined": load.quarantined,
        "api_total": result.total,
        "api_in_window": synced.in_window,
        "requests": result.requests,
        "pages": result.pages,
        "pages_columnar": result.columnar_pages,
        "repairs": result.repairs,
        "duplicates_dropped": result.duplicates_dropped,
        "out_of_window_dropped": result.out_of_window_dropped,
        "retries": dg.MetadataValue.json(dict(sorted(result.retries.items()))),
        "rate_limit_wait_s": round(result.rate_limit_wait_s, 3),
        "elapsed_s": round(time.monotonic() - started, 3),
    }


def build_calls_asset(
    settings: Settings, partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    specs = [
        partitioned_check(
            name, asset="calls", partitions=partitions, description=desc, blocking=name in BLOCKING
        )
        for name, desc in CALL_CHECKS.items()
    ]

    # a multi_asset of one asset: can_subset makes the checks' outputs optional, since a range's
    # check results are per day events (pipelines/days.py)
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "calls",
                group_name="jambonz",
                kinds={"duckdb", "python"},
                description=(
                    "One row per call (call_key), upserted by day window from jambonz "
                    "RecentCalls; never deleted. Columns: see docs/models.md 'The calls table'."
                ),
                partitions_def=partitions,
            )
        ],
        name="calls",
        partitions_def=partitions,
        backfill_policy=BACKFILL_POLICY,
        check_specs=specs,
        can_subset=True,
    )
    def calls(
        context: dg.AssetExecutionContext,
        jambonz: JambonzResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        def one_day(day: date) -> DayResult:
            return sync_day(context, settings, jambonz, warehouse, day)

        yield from materialize_days(
            context, settings, "calls", one_day, warn=WARNINGS, blocking=BLOCKING
        )

    return calls


def _synced_before(context: dg.AssetExecutionContext) -> bool:
    """Whether jambonz answered this Dagster instance before: a day or today was materialized.
    A URL that never answered is a setting to fix; one that did is a server down, retried."""
    instance = context.instance
    return any(
        instance.get_latest_materialization_event(dg.AssetKey(name)) is not None
        for name in ("calls", "calls_today")
    )


def _call_outcomes(
    wh: Warehouse, window: Window, synced: SyncResult, rows: int
) -> list[CheckOutcome]:
    return evaluate_call_checks(
        wh,
        window,
        loaded=synced.loaded,
        in_window=synced.in_window,
        quarantined=synced.quarantined,
        api_total=synced.fetch.total,
        rows_in_window=rows,
    )


@dataclass(frozen=True)
class DaySource:
    """What a day's sync of one stream does besides fetching and loading it."""

    stream: Stream
    # the stream's checks of a window, after its load: (warehouse, window, what the sync did,
    # the rows of the window the table holds)
    evaluate: Callable[[Warehouse, Window, SyncResult, int], list[CheckOutcome]]
    # the day's status is recorded (calls_day_syncs: provisional or complete), said in the log
    # and the metadata; the calls' own
    records_day: bool = False


CALLS_SOURCE = DaySource(RECENT_CALLS, _call_outcomes, records_day=True)


def sync_day(
    context: dg.AssetExecutionContext,
    settings: Settings,
    jambonz: JambonzResource,
    warehouse: WarehouseResource,
    day: date,
    source: DaySource = CALLS_SOURCE,
) -> DayResult:
    """One day's window of a stream fetched, loaded in one transaction and checked: its metadata
    and checks."""
    started = time.monotonic()
    scope = jambonz.scope()
    warehouse.check_writable()
    warehouse.release_file()  # the fetch may wait on the rate limit: not while holding the file
    window = day_window(day, settings.partitions_timezone)
    spec = source.stream
    context.log.info(
        f"syncing {spec.name} of {scope.kind} {scope.sid} for {day} "
        f"[{window.start.isoformat()}, {window.end.isoformat()})"
    )
    account = scope.sid if scope.kind == "account" else None
    # Pages stream through normalization into one transaction: a failed fetch rolls back whatever
    # was loaded of the window. The file is opened once the first chunk is ready, so a refused
    # key or an unreachable server writes nothing, and a day of one chunk holds the file for its
    # load (then its checks and the run's models) only. The connection is the run's
    # (WarehouseResource.shared): a lake's was opened by check_writable.
    opened: list[Warehouse] = []

    def open_warehouse() -> Warehouse:
        opened.append(warehouse.shared(partition=day.isoformat()))
        return opened[-1]

    synced_at = datetime.now(UTC)
    settles_at = window.end + timedelta(minutes=settings.settle_minutes)

    def day_status(result: WindowResult) -> dict[str, Any]:
        # jambonz's clock at the first page (its Date header), else ours when the sync began
        as_of = result.server_time or synced_at
        return {
            "day": day,
            "scope_sid": scope.sid,
            "window_start": window.start,
            "window_end": window.end,
            "as_of": as_of,
            "settles_at": settles_at,
            "complete": as_of >= settles_at,
            "synced_at": synced_at,
        }

    try:
        with jambonz.client(spec) as client:
            stream = client.stream_window(scope, window)
            synced = load_stream(
                stream,
                open_warehouse,
                scope,
                window,
                synced_at=synced_at,
                day_status=day_status if source.records_day else None,
                chunk_records=settings.chunk_records,
                spec=spec,
            )
    except BaseException as exc:
        # the load rolled back; the connection is dropped (the file let go while the step waits
        # to try again), the next use opens another
        warehouse.release()
        # the API down or short, the lake's window lock held too long (another run of the day),
        # a lake commit that lost a race: the window is fetched and loaded again
        transient = (
            JambonzUnavailableError,
            IncompleteWindowError,
            LakeLockError,
            WarehouseConflictError,
        )
        if isinstance(exc, JambonzUnreachableError) and not _synced_before(context):
            raise dg.Failure(
                description=f"partition {day}: JAMBONZ_BASE_URL={jambonz.base_url!r} did not "
                f"answer ({exc.tried}). Check its scheme, host and port. Nothing was written; "
                "not retried, as no run of this Dagster instance has synced from jambonz yet."
            ) from None
        if isinstance(exc, transient):
            raise TransientFailure(description=f"partition {day}: {exc}") from None
        if isinstance(exc, JambonzError):
            raise dg.Failure(description=f"partition {day}: {exc}") from None
        raise
    # the checks read the load's keys on its connection (the shared one, still open)
    with warehouse.using(partition=day.isoformat()) as wh:
        assert wh is opened[-1]
        rows = wh.count_calls(window.start, window.end, account, table=spec.table)
        outcomes = source.evaluate(wh, window, synced, rows)
        wh.forget_window()
    metadata = _metadata(scope, window, synced, rows, started)
    if not source.records_day:
        return metadata, outcomes
    if synced.fetch.total == 0 and rows > 0:
        context.log.warning(
            f"jambonz returned total 0 for {day} but the warehouse holds {rows} calls of it: the "
            "API no longer has this day. Nothing was deleted."
        )
    elif synced.fetch.total == 0:
        context.log.warning(f"jambonz returned total 0 for {day}: no calls in this window.")
    status = day_status(synced.fetch)
    if not status["complete"]:
        context.log.info(
            f"{day} is provisional: jambonz's clock read {status['as_of'].isoformat()}, before "
            f"the day settles at {settles_at.isoformat()}; the daily run after it makes it final"
        )
    metadata["provisional"] = not status["complete"]
    metadata["as_of_utc"] = status["as_of"].isoformat()
    return metadata, outcomes
