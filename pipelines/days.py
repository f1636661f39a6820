"""One step, one day or a range of days: each day on its own, recorded as if it had its own run.

`calls` and the models have `BackfillPolicy.single_run()`: a backfill launched from the UI, or
`dg launch --partition-range A...B`, is one run whose step gets every day of the range (the
partition CLI accepts nothing else). That saves each day the process start, imports and instance
set-up of a run of its own. What a day must keep, it keeps here:
- its own window, transaction and checks: `materialize_days` calls `one_day` once per day, and a
  day that fails fails alone. The others commit and are recorded; the step then fails, naming
  every failed day and its cause, so the backfill shows those days failed and the rest
  materialized;
- its own metadata and check results: each day's are attached to its own partition
  (`add_asset_metadata(partition_key=)`, check evaluations with their partition), so the UI's
  partition view shows each day's counts as a run of that day would. A run of one day yields
  its checks as results instead (the checks' outputs): Dagster gates the models on the
  blocking ones, and says nothing of checks "that emitted no result".

Transient failures (jambonz unavailable, the warehouse held, a lake commit that lost a race): a
run of one day asks Dagster for a step retry, as before (`retrying`); in a range the failing day
is tried again in place with the same bound and backoff, since a step retry would fetch the
committed days again.

A run holds at most `SYNC_BACKFILL_MAX_DAYS` days (31 by default), refused before any request
beyond that. Why a bound, and why 31: jambonz keeps at most the 30 days its web UI offers, so 31
local days cover every range it can still serve in one run; a run is the unit that is retried or
re-executed, and at the worst day the rate limit allows (200k calls = 400 pages at 1.6 requests
a second after the reserve) 31 days are about 2.2 hours of one run, not a day.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import dagster as dg

from pipelines.partitions import partition_day
from pipelines.retries import retrying, retrying_in_place
from pipelines.settings import Settings
from warehouse.checks import CheckOutcome

BACKFILL_POLICY = dg.BackfillPolicy.single_run()

# what one day gives: its metadata, and its checks' outcomes (those in `warn` have severity WARN)
DayResult = tuple[dict[str, Any], list[CheckOutcome]]


def check_evaluation(
    asset: str, outcome: CheckOutcome, day: str, *, warn: bool, blocking: bool
) -> dg.AssetCheckEvaluation:
    """A check's result for one day's partition (a step of a range has no single partition key
    for Dagster to attach an AssetCheckResult to)."""
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset),
        check_name=outcome.name,
        passed=outcome.passed,
        partition=day,
        blocking=blocking,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata=check_metadata(outcome, day),
    )


def check_result(asset: str, outcome: CheckOutcome, day: str, *, warn: bool) -> dg.AssetCheckResult:
    """A check's result in a run of one day: its output, so the blocking ones gate the models."""
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(asset),
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata=check_metadata(outcome, day),
    )


def check_metadata(outcome: CheckOutcome, day: str) -> dict[str, Any]:
    """What a check's result says: the local day (YYYY-MM-DD), violations, sample, and the
    outcome's own (`table`: markdown a person reads; lists and objects as JSON, such as the
    `flagged` groups pipelines/notify.py sends)."""
    metadata: dict[str, Any] = {
        "day": day,
        "violations": outcome.violations,
        "sample": json.dumps(outcome.sample),
    }
    for key, value in outcome.metadata.items():
        if key == "table":
            metadata[key] = dg.MetadataValue.md(value)
        elif isinstance(value, list | dict):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = value
    return metadata


def materialize_days(
    context: dg.AssetExecutionContext,
    settings: Settings,
    asset: str,
    one_day: Callable[[date], DayResult],
    *,
    warn: tuple[str, ...] = (),
    blocking: tuple[str, ...] = (),
) -> Iterator[Any]:
    """The events of `asset`'s step: `one_day` for every day of the run's partitions, in order."""
    keys = list(context.partition_keys)
    if len(keys) > settings.backfill_max_days:
        raise dg.Failure(
            description=(
                f"this run holds {len(keys)} days ({keys[0]}...{keys[-1]}); one run holds at most "
                f"SYNC_BACKFILL_MAX_DAYS={settings.backfill_max_days}: launch ranges of at most "
                "that many days, or raise the setting. Nothing was fetched."
            )
        )
    done: list[tuple[str, dict[str, Any]]] = []
    failed: dict[str, str] = {}
    for n, key in enumerate(keys, start=1):
        day = partition_day(key)
        if len(keys) > 1:
            context.log.info(f"{asset}: day {n} of {len(keys)}, {key}")
        try:
            metadata, outcomes = _attempt(context, settings, one_day, day, alone=len(keys) == 1)
        except Exception as exc:
            if len(keys) == 1:  # the step's own failure, or its retry
                if isinstance(exc, dg.Failure):
                    said_last(exc)
                raise
            failed[key] = _cause(exc)
            context.log.error(f"{asset}: {key} failed, the other days go on: {failed[key]}")
            continue
        for outcome in outcomes:
            if len(keys) == 1:  # the run's own partition: a result Dagster gates downstream on
                yield check_result(asset, outcome, key, warn=outcome.name in warn)
            else:
                yield check_evaluation(
                    asset,
                    outcome,
                    key,
                    warn=outcome.name in warn,
                    blocking=outcome.name in blocking,
                )
        done.append((key, metadata))
    if failed:
        # the step fails, so no output: the committed days are recorded one event each
        for key, metadata in done:
            yield dg.AssetMaterialization(asset_key=asset, partition=key, metadata=metadata)
        causes = "; ".join(f"{key}: {why}" for key, why in failed.items())
        raise said_last(
            dg.Failure(
                description=(
                    f"{len(failed)} of {len(keys)} days failed ({causes}); the other {len(done)} "
                    "committed and are recorded"
                )
            )
        )
    for key, metadata in done:
        context.add_asset_metadata(metadata, asset_key=asset, partition_key=key)
    yield dg.MaterializeResult(asset_key=asset)


class Cause(Exception):
    """A step's failure said again, never raised: Dagster prints a failed step's message, then its
    stack trace, then the exception's cause. An unraised cause has no stack, so its one line is
    the last a person sees above the CLI's "Error: Materialization failed."."""


def said_last(exc: dg.Failure) -> dg.Failure:
    """`exc`, its description attached again as its cause."""
    if exc.description:
        exc.__cause__ = Cause(exc.description)
    return exc


def _attempt(
    context: dg.AssetExecutionContext,
    settings: Settings,
    one_day: Callable[[date], DayResult],
    day: date,
    *,
    alone: bool,
) -> DayResult:
    if alone:
        with retrying(context, settings.sync_retries, settings.sync_retry_delay_s):
            return one_day(day)
    return retrying_in_place(
        context, settings.sync_retries, settings.sync_retry_delay_s, lambda: one_day(day)
    )


def _cause(exc: Exception) -> str:
    description = exc.description if isinstance(exc, dg.Failure) else None
    return description or f"{type(exc).__name__}: {exc}"
