"""The code location loads with nothing set, and its partitions, schedule and checks are right."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.models import MODELS
from pipelines.partitions import day_window
from pipelines.schedules import days_for_tick
from pipelines.settings import SettingsError, load_settings, settings_and_problems


def test_definitions_load_with_nothing_set(clean_env: None) -> None:
    today = date(2026, 11, 27)
    settings = load_settings({}, today=today)
    defs = build_definitions(settings)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    models = {
        "call_durations_daily",
        "answer_rates_daily",
        "trunk_kpis_daily",
        "calls_hourly",
        "alerts_daily",
        "destinations_daily",
        "fraud_findings",
    }
    assert keys == {"calls", "alerts", "calls_today", *models}
    calls = defs.resolve_assets_def("calls")
    partitions = calls.partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "UTC"
    assert partitions.get_first_partition_key() == "2026-10-28"  # 30 days of jambonz retention
    assert settings.base_url == "https://api.jambonz.cloud"
    check_names = {spec.name for name in keys for spec in defs.resolve_assets_def(name).check_specs}
    assert {"calls_complete", "call_key_unique", "answer_rate_bounds", "asr_drop"} <= check_names
    (drop,) = list(defs.resolve_assets_def("trunk_kpis_daily").check_specs)
    assert (drop.name, drop.blocking) == ("asr_drop", False)
    fraud = {(s.name, s.blocking) for s in defs.resolve_assets_def("fraud_findings").check_specs}
    today = {(s.name, s.blocking) for s in defs.resolve_assets_def("calls_today").check_specs}
    checks = ("wangiri_inbound", "irsf_destination", "short_call_dialer", "acd_collapse")
    assert fraud == today == {(name, False) for name in checks}  # WARN, on both
    dg.Definitions.validate_loadable(defs)


def test_blocking_checks_are_completeness_and_uniqueness(clean_env: None) -> None:
    defs = build_definitions(load_settings({}))
    calls = defs.resolve_assets_def("calls")
    blocking = {spec.name for spec in calls.check_specs if spec.blocking}
    assert blocking == {"calls_complete", "call_key_unique"}
    alerts = defs.resolve_assets_def("alerts")
    assert {(s.name, s.blocking) for s in alerts.check_specs} == {
        ("alerts_complete", True),
        ("alert_key_unique", True),
    }


def test_models_follow_calls_and_wait_for_blocking_checks(clean_env: None) -> None:
    defs = build_definitions(load_settings({}))
    for name in MODELS:
        model = defs.resolve_assets_def(name)
        upstream = "alerts" if name == "alerts_daily" else "calls"
        assert model.dependency_keys == {dg.AssetKey(upstream)}
        condition = model.automation_conditions_by_key[dg.AssetKey(name)]
        assert condition == (
            dg.AutomationCondition.eager()
            & dg.AutomationCondition.all_deps_blocking_checks_passed()
        )


def test_schedule_cron_timezone_and_lookback_requests(clean_env: None) -> None:
    env = {
        "PARTITIONS_TIMEZONE": "America/New_York",
        "PARTITIONS_START_DATE": "2026-11-01",
        "SYNC_SETTLE_MINUTES": "90",
        "SYNC_LOOKBACK_DAYS": "2",
    }
    settings = load_settings(env)
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("daily_calls_sync")
    assert schedule.cron_schedule == "30 1 * * *"
    assert schedule.execution_timezone == "America/New_York"
    tick = datetime(2026, 11, 25, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests or []
    assert [r.partition_key for r in requests] == ["2026-11-22", "2026-11-23", "2026-11-24"]
    assert requests[-1].tags["jambonz/sync"] == "settled"
    assert len({r.run_key for r in requests}) == 3


def test_schedule_never_requests_a_day_before_it_settled() -> None:
    settings = load_settings({"SYNC_SETTLE_MINUTES": "60", "PARTITIONS_START_DATE": "2026-11-01"})
    # Ten minutes past midnight is before the settle delay: the newest day is the one before.
    early = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
    assert days_for_tick(early, settings)[-1] == date(2026, 11, 23)
    on_time = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    assert days_for_tick(on_time, settings)[-1] == date(2026, 11, 24)


def test_schedule_clips_lookback_at_the_first_partition() -> None:
    settings = load_settings({"PARTITIONS_START_DATE": "2026-11-24", "SYNC_LOOKBACK_DAYS": "5"})
    tick = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    assert days_for_tick(tick, settings) == [date(2026, 11, 24), date(2026, 11, 25)]


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 11, 2), 24)],
)
def test_partition_windows_follow_daylight_saving(day: date, hours: int) -> None:
    window = day_window(day, "America/New_York")
    assert window.end - window.start == timedelta(hours=hours)
    assert window.start.tzinfo == UTC
    assert day_window(day + timedelta(days=1), "America/New_York").start == window.end


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PARTITIONS_TIMEZONE": "Mars/Olympus"}, "PARTITIONS_TIMEZONE"),
        ({"PARTITIONS_START_DATE": "27/11/2026"}, "PARTITIONS_START_DATE"),
        ({"SYNC_LOOKBACK_DAYS": "many"}, "SYNC_LOOKBACK_DAYS"),
        ({"JAMBONZ_RATE_LIMIT_RESERVE": "1.5"}, "JAMBONZ_RATE_LIMIT_RESERVE"),
        ({"WAREHOUSE_MEMORY_LIMIT": "lots"}, "WAREHOUSE_MEMORY_LIMIT"),
        ({"WAREHOUSE_MEMORY_LIMIT": "512"}, "WAREHOUSE_MEMORY_LIMIT"),
        ({"SYNC_RETRIES": "-1"}, "SYNC_RETRIES"),
        ({"SYNC_RETRY_DELAY_S": "soon"}, "SYNC_RETRY_DELAY_S"),
        ({"SYNC_FRESHNESS_MARGIN_MINUTES": "1e3"}, "SYNC_FRESHNESS_MARGIN_MINUTES"),
        ({"SYNC_INTRADAY_MINUTES": "-5"}, "SYNC_INTRADAY_MINUTES"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names) as raised:
        load_settings(env)
    assert raised.value.variable == names


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-13-01", "is not a date (month must be in 1..12)"),
        ("2026-02-30", "is not a date (day is out of range for month)"),
        ("27/11/2026", "is not YYYY-MM-DD"),
    ],
)
def test_a_bad_date_is_said_and_the_definitions_still_load(
    clean_env: None, value: str, why: str
) -> None:
    """The code location loads (the UI, the schedule, `dg launch` need it); the problem names
    the variable, the value and what is wrong with it, for every run to fail on."""
    settings, problems = settings_and_problems(
        {"PARTITIONS_START_DATE": value, "SYNC_RETRIES": "-1", "WAREHOUSE_PATH": "/w.duckdb"}
    )
    assert problems == [
        f"PARTITIONS_START_DATE={value!r} {why}",
        "SYNC_RETRIES=-1 is outside 0..20",
    ]
    assert settings == load_settings({"WAREHOUSE_PATH": "/w.duckdb"})  # defaults stand in
    defs = build_definitions(settings, problems)
    assert defs.resolve_job_def("daily_sync")


def test_the_watchers_run_by_default_and_no_pool_holds_the_file(clean_env: None) -> None:
    settings = load_settings({"SYNC_SETTLE_MINUTES": "90", "SYNC_FRESHNESS_MARGIN_MINUTES": "45"})
    defs = build_definitions(settings)
    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    for name in ("dead_runs", "calls_freshness", "models_follow_calls"):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING, name
    for name in ("calls", "alerts", *MODELS):
        assert defs.resolve_assets_def(name).node_def.pool is None
    # yesterday must be in by 90 + 45 minutes after local midnight; the job leaves that check to
    # its sensor
    (fresh,) = [c for c in repo.asset_checks_defs_by_key if c.name == "freshness_check"]
    assert fresh.asset_key == dg.AssetKey("calls")
    (spec,) = repo.asset_checks_defs_by_key[fresh].check_specs
    assert spec.metadata["dagster/freshness_params"].data["deadline_cron"] == "15 2 * * *"
    job = repo.get_job("daily_sync")
    assert fresh not in job.asset_layer.asset_graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey("calls"), "calls_complete") in (
        job.asset_layer.asset_graph.asset_check_keys
    )


def test_the_intraday_sync_is_a_sensor_turned_on_as_the_schedule_is(clean_env: None) -> None:
    repo = build_definitions(load_settings({})).get_repository_def()
    (sensor,) = [s for s in repo.sensor_defs if s.name == "intraday_calls_sync"]
    assert sensor.minimum_interval_seconds == 15 * 60  # SYNC_INTRADAY_MINUTES' default
    # off until an operator turns it on, in the UI or `dagster sensor start`, as daily_calls_sync
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert repo.get_schedule_def("daily_calls_sync").default_status.value == "STOPPED"
    assert sensor.job_name == "intraday_sync"
    five = build_definitions(load_settings({"SYNC_INTRADAY_MINUTES": "5"})).get_repository_def()
    assert five.get_sensor_def("intraday_calls_sync").minimum_interval_seconds == 300
    off = build_definitions(load_settings({"SYNC_INTRADAY_MINUTES": "0"})).get_repository_def()
    assert "intraday_calls_sync" not in {s.name for s in off.sensor_defs}
    assert off.has_job("intraday_sync")  # a run of today by hand still works
