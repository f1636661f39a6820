"""One asset per warehouse model: each partition rebuilds only its own day.

The models follow `calls` on their own: their automation condition is eager (a day's model is
rebuilt when that day of `calls` changes) gated on `calls`' blocking checks having passed. The
daily job also includes them, so a scheduled run leaves calls and models in step without waiting
for the automation sensor.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from pipelines import fraud
from pipelines.charts import asr_per_trunk, busiest_countries, calls_per_hour, markdown_image
from pipelines.days import BACKFILL_POLICY, DayResult, materialize_days
from pipelines.jambonz.streams import Window
from pipelines.numbers import countries
from pipelines.partitions import day_window, partitioned_check
from pipelines.resources import WarehouseResource
from pipelines.settings import Settings
from warehouse.checks import CheckOutcome
from warehouse.database import Warehouse

MODELS: dict[str, str] = {
    "call_durations_daily": (
        "Per day (partition time zone), account, direction and trunk: answered calls, talk "
        "seconds, mean, median, p90, p99 and max duration of answered calls."
    ),
    "answer_rates_daily": (
        "Per day (partition time zone), account, direction and trunk: attempts, answered, "
        "answer_rate, failures by SIP class (4xx/5xx/6xx) and the most frequent termination reason."
    ),
    "trunk_kpis_daily": (
        "Per day (partition time zone), account, direction and trunk: ASR, failure causes (busy, "
        "no answer, rejected, abandoned, network), RFC 6076 SER/SEER/ISA, talk time and ACD, "
        "short calls, answer delay p50/p90, peak concurrent calls and peak calls per second."
    ),
    "calls_hourly": (
        "Per local hour (distinct instants across DST), account, direction and trunk: attempts, "
        "answered, talk seconds and peak concurrent calls (calls carried in included)."
    ),
    "alerts_daily": (
        "Per day (partition time zone), account and alert type: jambonz alerts, among them the "
        "calls refused at the account's or service provider's call limit."
    ),
    "destinations_daily": (
        "Per day (partition time zone), account, direction, trunk and the far end's country "
        "(libphonenumber; NULL when the number reads as none): attempts, answered, ASR, talk "
        "seconds, ACD, short calls and cost."
    ),
    "fraud_findings": (
        "Per day (partition time zone): the groups the fraud checks flagged (Wangiri callers, "
        "IRSF destinations, short-call dialers, trunks whose ACD collapsed), with their figures; "
        "the checks themselves (WARN) say what they compared and skipped."
    ),
}
# the asset each model reads (the rest read `calls`)
UPSTREAM: dict[str, str] = {"alerts_daily": "alerts"}
CALL_MODELS = tuple(name for name in MODELS if name not in UPSTREAM)  # those of `calls`
# models whose summary counts the day's calls itself (its $window_start, $window_end): reading
# them from another model would depend on the order of the run's steps
WINDOWED_SUMMARIES = ("alerts_daily",)

MODEL_CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "fraud_findings": (
        (
            "wangiri_inbound",
            "One-ring floods from abroad: a foreign calling number with >= 20 inbound attempts "
            "to >= 10 numbers, >= 90% unanswered, >= 80% of those ringing <= 8 s, and >= 10 "
            "attempts in one 5-minute bucket (WARN; FRAUD_WANGIRI_INBOUND_*).",
        ),
        (
            "irsf_destination",
            "Revenue share fraud: an account's outbound calls to a high-risk country (>= 5 "
            "attempts), or to a country it never called in 30 days of history with >= 10 "
            "attempts, >= 600 answered seconds and >= 3 numbers (WARN; FRAUD_IRSF_DESTINATION_*).",
        ),
        (
            "short_call_dialer",
            "Dialers: an account's calling number with >= 100 answered outbound calls, >= 15% "
            "under 6 s, an ACD under 60 s, to >= 50 numbers (WARN; FRAUD_SHORT_CALL_DIALER_*).",
        ),
        (
            "acd_collapse",
            "A trunk and direction whose ACD fell to half its 30-day median or less with a "
            "short-call share of max(15%, twice its median), on >= 50 answered calls (WARN; "
            "FRAUD_ACD_COLLAPSE_*).",
        ),
    ),
    "answer_rates_daily": (
        ("answer_rate_bounds", "answer_rate lies in [0, 1]."),
        ("model_attempts_match", "The day's attempts equal the calls attempted in the day."),
    ),
    "trunk_kpis_daily": (
        (
            "asr_drop",
            "No trunk's ASR collapsed: flags a group with >= 50 attempts on the day, >= 200 in "
            "the 7 days before, an ASR 10+ points below theirs and a pooled two-proportion "
            "z <= -3 (WARN, not blocking).",
        ),
    ),
}
# models whose day is also summed up in numbers (warehouse/sql/<model>_summary.sql): Dagster
# plots numeric metadata across partitions
SUMMARIES = ("trunk_kpis_daily", "calls_hourly", "alerts_daily", "destinations_daily")
# the table a person reads in the UI, of the day (warehouse/reports/<name>.sql, $first = $last =
# the day): the HTML report's, over its days
TABLES = {"alerts_daily": "alerts_by_type", "destinations_daily": "destinations_busiest"}
# anomalies: a person should look, nothing is wrong with the data
WARN_CHECKS = ("asr_drop", *fraud.CHECKS)


def _chart(name: str, wh: Warehouse, day: date, tz: str) -> str | None:
    """The model's picture of the day, as markdown (an inline SVG); None for a model without."""
    if name == "trunk_kpis_daily":
        first = day - timedelta(days=13)
        rows = wh.query("trunk_kpis_daily_asr", {"first": first, "last": day})
        days = [first + timedelta(days=k) for k in range(14)]
        svg = asr_per_trunk(f"ASR per trunk, 14 days to {day}", days, rows)
        return markdown_image(svg, "ASR per trunk over 14 days")
    if name == "calls_hourly":
        rows = wh.query("calls_hourly_by_hour", {"first": day, "last": day, "tz": tz})
        svg = calls_per_hour(f"Calls per hour, {day} ({tz})", rows, [day], tz)
        return markdown_image(svg, "attempts and peak concurrency per hour")
    if name == "destinations_daily":  # the report's chart, of the day
        _, rows = wh.report("destinations_busiest", {"first": day, "last": day})
        if not rows:
            return None
        svg = busiest_countries(f"The ten busiest countries, {day}", rows)
        return markdown_image(svg, "attempts and ASR of the ten busiest countries")
    return None


def _markdown(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in rows)


def rebuild_day(
    name: str, settings: Settings, warehouse: WarehouseResource, day: date
) -> DayResult:
    """Model `name`'s rows of `day` rebuilt, and checked: its metadata and check outcomes."""
    tz = settings.partitions_timezone
    window = day_window(day, tz)
    with warehouse.using(partition=day.isoformat()) as wh:  # the run's connection
        tables, outcomes = model_inputs(name, wh, day, fraud.Rules.of(settings))
        rows = wh.rebuild_model(
            name, day=day, tz=tz, window_start=window.start, window_end=window.end, tables=tables
        )
        if name in TABLES:
            columns, report = wh.report(TABLES[name], {"first": day, "last": day})
        else:  # the day's calls by trunk
            columns, report = wh.report("by_trunk", {"start": window.start, "end": window.end})
        outcomes += [
            wh.check(check, start=window.start, end=window.end, day=day, tz=tz)
            for check, _ in MODEL_CHECKS.get(name, ())
            if check not in fraud.CHECKS  # model_inputs ran those: SQL files of their own
        ]
        params: dict[str, Any] = {"day": day}
        if name in WINDOWED_SUMMARIES:
            params |= {"window_start": window.start, "window_end": window.end}
        numbers = wh.summary(f"{name}_summary", params) if name in SUMMARIES else {}
        chart = _chart(name, wh, day, tz)
        ((complete,),) = wh.query("calls_day_syncs_complete", {"day": day})
    metadata = {
        "dagster/row_count": rows,
        "day": day.isoformat(),
        # a sync of the day saw it settled (calls_days; none recorded: synced before
        # calls_days existed, so by the daily schedule)
        "complete": True if complete is None else bool(complete),
        TABLES.get(name, "by_trunk"): dg.MetadataValue.md(_markdown(columns, report)),
        **{k: v for k, v in numbers.items() if v is not None},
        **({"chart": dg.MetadataValue.md(chart)} if chart else {}),
    }
    return metadata, outcomes


def model_inputs(
    name: str, wh: Warehouse, day: date, rules: fraud.Rules
) -> tuple[dict[str, pa.Table], list[CheckOutcome]]:
    """What model `name`'s query reads of `day` besides the warehouse (Arrow tables for
    Warehouse.rebuild_model's `tables`), and the outcomes of the checks run to make them: the
    fraud checks run first and fraud_findings holds what they flagged. `rules`: the day's zone,
    NUMBERS_* and FRAUD_* (fraud.Rules.of(settings))."""
    if name == "destinations_daily":
        window = day_window(day, rules.tz)
        return {"far_end_countries": far_end_countries(wh, window, rules.region)}, []
    if name == "fraud_findings":
        findings = fraud.find(wh, day, rules).values()
        return {"fraud_flagged": fraud.flagged_table(findings)}, [
            fraud.outcome(f) for f in findings
        ]
    return {}, []


def far_end_countries(wh: Warehouse, window: Window, region: str | None) -> pa.Table:
    """The day's far-end numbers (to of outbound calls, from of inbound ones) and their
    countries (pipelines/numbers.py), for destinations_daily's join."""
    rows = wh.query(
        "destinations_daily_numbers", {"window_start": window.start, "window_end": window.end}
    )
    found = countries([n for (n,) in rows], region)
    return pa.table(
        {
            "number": pa.array(list(found), pa.string()),
            "country": pa.array(list(found.values()), pa.string()),
        }
    )


def build_model_asset(
    name: str,
    settings: Settings,
    partitions: dg.DailyPartitionsDefinition,
    upstream: dg.AssetsDefinition,
) -> dg.AssetsDefinition:
    """Model `name`'s asset; `upstream`: the asset it reads (UPSTREAM, else calls)."""
    checks = MODEL_CHECKS.get(name, ())
    specs = [
        partitioned_check(check, asset=name, partitions=partitions, description=desc)
        for check, desc in checks
    ]

    # a multi_asset of one asset, as `calls` (can_subset: a range's check results are per day)
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                name,
                deps=[upstream.key],
                group_name="models",
                kinds={"duckdb", "sql"},
                description=MODELS[name],
                partitions_def=partitions,
                automation_condition=dg.AutomationCondition.eager()
                & dg.AutomationCondition.all_deps_blocking_checks_passed(),
            )
        ],
        name=name,
        partitions_def=partitions,
        backfill_policy=BACKFILL_POLICY,
        check_specs=specs,
        can_subset=True,
    )
    def model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
        def one_day(day: date) -> DayResult:
            return rebuild_day(name, settings, warehouse, day)

        yield from materialize_days(context, settings, name, one_day, warn=WARN_CHECKS)

    return model
