"""Partitions materialized in-process through the real definitions, the simulator and DuckDB.

Every test runs in both lanes: the DuckDB file, and a DuckLake with its catalog in PostgreSQL
(WAREHOUSE_URL), through the same definitions."""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import pytest

from pipelines.calls import evaluate_call_checks
from pipelines.partitions import day_window
from tests.conftest import NOW, cdr, each_lane
from tests.e2e.conftest import Pipeline

DAY = NOW.date() - timedelta(days=2)


def _meta(result: dg.ExecuteInProcessResult, node: str = "calls") -> dict[str, Any]:
    mats = result.asset_materializations_for_node(node)
    assert len(mats) == 1
    return {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)  # the conftest's `pipeline` fixture, in the file and in a fresh lake


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The error text of the run's failed step."""
    failure = next(e for e in result.all_events if e.is_step_failure)
    return str(failure.step_failure_data.error)


def _keys(pipeline: Pipeline, day: date) -> list[str]:
    w = day_window(day, pipeline.settings.partitions_timezone)
    with pipeline.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT call_key FROM calls WHERE attempted_at >= $s AND attempted_at < $e",
            {"s": w.start, "e": w.end},
        ).fetchall()
    return [r[0] for r in rows]


def _truth_keys(pipeline: Pipeline, day: date) -> set[str]:
    from tests.helpers import record_identity

    return {record_identity(r) for r in pipeline.truth(day)}


def test_a_day_loads_every_call_once_with_metadata_and_passing_checks(pipeline: Pipeline) -> None:
    result = pipeline.run_day(DAY)
    assert result.success
    keys = _keys(pipeline, DAY)
    assert len(keys) == len(set(keys))
    assert set(keys) == _truth_keys(pipeline, DAY)
    meta = _meta(result)
    assert meta["dagster/row_count"] == len(keys)
    assert meta["inserted"] == len(keys)
    assert meta["updated"] == 0
    assert meta["api_total"] == len(keys)
    assert meta["requests"] >= 1
    # the asset reads pages on the fast path (the simulator's pages are the server's shape)
    assert 0 < meta["pages_columnar"] <= meta["pages"]
    for name in ("repairs", "quarantined", "rate_limit_wait_s", "elapsed_s", "retries"):
        assert name in meta
    checks = _checks(result)
    for name in ("calls_complete", "call_key_unique", "timestamps_ordered", "duration_consistent"):
        assert checks[name].passed, name
    assert checks["answer_rate_bounds"].passed
    assert checks["model_attempts_match"].passed
    model_meta = _meta(result, "answer_rates_daily")
    assert "| trunk |" in model_meta["by_trunk"]
    assert model_meta["dagster/row_count"] > 0
    for model in ("trunk_kpis_daily", "calls_hourly"):
        assert _meta(result, model)["dagster/row_count"] > 0, model
        # numbers Dagster plots across partitions: every call of the day, counted once
        assert _meta(result, model)["total_attempts"] == len(keys), model
        assert _meta(result, model)["peak_concurrent"] >= 1, model
    kpis = _meta(result, "trunk_kpis_daily")
    assert kpis["overall_asr"] == pytest.approx(model_meta_asr(pipeline, DAY), abs=5e-5)
    # the pictures: ASR per trunk (a line per trunk of the day), calls per hour (two lines)
    trunks = {r.get("trunk") or "(no trunk)" for r in pipeline.truth(DAY)}
    assert _series(kpis["chart"]) == sorted(trunks)
    assert _series(_meta(result, "calls_hourly")["chart"]) == ["attempts", "peak concurrent"]
    # the anomaly check warns, and on a first day passes saying why
    drop = checks["asr_drop"]
    assert drop.passed
    assert drop.severity == dg.AssetCheckSeverity.WARN
    assert "too little history" in drop.metadata["sample"].text


def _series(markdown: str) -> list[str]:
    """The series names of the SVG chart inlined in a markdown image."""
    assert markdown.startswith("![")
    assert "(data:image/svg+xml;base64," in markdown
    svg = base64.b64decode(markdown.split(",", 1)[1].rstrip(")")).decode()
    return re.findall(r'<g class="series" data-name="([^"]*)">', svg)


def model_meta_asr(pipeline: Pipeline, day: date) -> float:
    """The day's answered share of its calls, read straight from `calls`."""
    w = day_window(day, pipeline.settings.partitions_timezone)
    with pipeline.connect(read_only=True) as con:
        ((asr,),) = con.execute(
            "SELECT avg(CAST(coalesce(answered, false) AS INTEGER)) FROM calls "
            "WHERE attempted_at >= $s AND attempted_at < $e",
            {"s": w.start, "e": w.end},
        ).fetchall()
    return float(asr)


def test_resync_is_idempotent(pipeline: Pipeline) -> None:
    assert pipeline.run_day(DAY).success
    with pipeline.connect(read_only=True) as con:
        before = con.execute("SELECT * EXCLUDE (synced_at) FROM calls ORDER BY call_key").fetchall()
    again = pipeline.run_day(DAY)
    meta = _meta(again)
    assert (meta["inserted"], meta["updated"]) == (0, 0)
    assert meta["unchanged"] == len(before)
    with pipeline.connect(read_only=True) as con:
        after = con.execute("SELECT * EXCLUDE (synced_at) FROM calls ORDER BY call_key").fetchall()
    assert after == before


def test_calls_still_up_at_the_first_sync_arrive_on_the_resync(pipeline: Pipeline) -> None:
    day = NOW.date() - timedelta(days=1)
    end_of_day = day_window(day, "UTC").end
    # Synced while the day's last calls are still up: their CDRs are written when they end.
    pipeline.sim.set_clock(end_of_day - timedelta(minutes=30))
    first = _meta(pipeline.run_day(day))
    pipeline.sim.set_clock(end_of_day + timedelta(hours=6))
    late = _truth_keys(pipeline, day)
    assert len(late) > first["dagster/row_count"], "the simulator should have late calls"
    second = _meta(pipeline.run_day(day))
    assert second["inserted"] == len(late) - first["dagster/row_count"]
    assert set(_keys(pipeline, day)) == late


def test_a_day_the_api_forgot_keeps_its_calls_and_warns(pipeline: Pipeline) -> None:
    assert pipeline.run_day(DAY).success
    held = len(_keys(pipeline, DAY))
    pipeline.sim.set_clock(NOW + timedelta(days=60))  # past jambonz's retention
    result = pipeline.run_day(DAY)
    assert result.success
    meta = _meta(result)
    assert meta["api_total"] == 0
    assert meta["dagster/row_count"] == held
    assert len(_keys(pipeline, DAY)) == held
    check = _checks(result)["api_still_has_window"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    logged = [
        r.user_message
        for r in pipeline.instance.all_logs(result.run_id)
        if r.level == logging.WARNING
    ]
    assert any("no longer has this day. Nothing was deleted." in m for m in logged), logged


@pytest.mark.parametrize("key", ["unset", "empty"])
def test_missing_api_key_fails_first_step_naming_the_variable(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.settings import load_settings

    if key == "unset":
        monkeypatch.delenv("JAMBONZ_API_KEY")
    else:
        monkeypatch.setenv("JAMBONZ_API_KEY", "")
    pipeline.defs = build_definitions(load_settings())  # loaded again, as at a restart
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert "Failure: JAMBONZ_API_KEY is not set: export the API key" in message  # ours
    assert "environment variable" not in message  # not Dagster's EnvVar error
    assert "httpx" not in message
    assert not pipeline.written()
    assert pipeline.sim.request_log == []


def test_a_bad_setting_fails_the_run_naming_it_before_any_request(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An impossible PARTITIONS_START_DATE: the definitions load with the default, and the run
    fails at its first step naming the variable, the value and what is wrong with it."""
    from pipelines.definitions import build_definitions
    from pipelines.settings import settings_and_problems

    before = pipeline.snapshot()
    monkeypatch.setenv("PARTITIONS_START_DATE", "2026-13-01")
    pipeline.defs = build_definitions(*settings_and_problems())
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert "PARTITIONS_START_DATE='2026-13-01' is not a date (month must be in 1..12)" in message
    assert pipeline.sim.request_log == []
    assert pipeline.snapshot() == before


def test_a_schema_newer_than_this_release_fails_before_any_request(pipeline: Pipeline) -> None:
    """A worker of an older release meets a warehouse a newer one migrated: it must not write."""
    with pipeline.open() as wh:
        known = max(v for (v,) in wh.con.execute("SELECT version FROM schema_version").fetchall())
        wh.con.execute("INSERT INTO schema_version VALUES (999, 'from_a_newer_release', now())")
    before = pipeline.snapshot()
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert "schema version 999" in message
    assert f"up to {known}" in message
    assert "Upgrade this worker" in message
    assert pipeline.sim.request_log == []
    assert pipeline.snapshot() == before


def test_malformed_account_sid_fails_naming_the_variable(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.settings import load_settings

    monkeypatch.setenv("JAMBONZ_ACCOUNT_SID", "not-a-sid")
    pipeline.defs = build_definitions(load_settings())
    result = pipeline.run_day(DAY)
    assert "JAMBONZ_ACCOUNT_SID='not-a-sid'" in failure_message(result)
    assert pipeline.sim.request_log == []


def test_wrong_api_key_fails_with_the_cause_and_writes_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAMBONZ_API_KEY", "wrong-key-5f3c9a")
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert "401" in message
    assert "wrong-key-5f3c9a" not in message
    assert len(pipeline.sim.request_log) == 1  # no retry storm
    assert not pipeline.written()


# --- each check fails on data built to break it -------------------------------------------------


def _record(call_sid: str, day: date, **overrides: Any) -> dict[str, Any]:
    return cdr(call_sid, datetime.combine(day, time(12), UTC), **overrides)


@pytest.mark.parametrize(
    ("check", "overrides"),
    [
        ("answered_sip_200", {"sip_status": 486}),
        ("timestamps_ordered", {"answered_at": f"{DAY.isoformat()}T11:59:00.000Z"}),
        ("duration_consistent", {"duration": 600}),
    ],
)
def test_record_checks_fail_on_records_built_to_break_them(
    pipeline: Pipeline, check: str, overrides: dict[str, Any]
) -> None:
    bad_sid = "00000000-0000-4000-8000-00000000bad1"
    pipeline.sim.add_records([_record(bad_sid, DAY, **overrides)])
    result = pipeline.run_day(DAY)
    evaluation = _checks(result)[check]
    assert not evaluation.passed
    assert bad_sid in json.loads(str(evaluation.metadata["sample"].value))


def test_duplicate_call_key_fails_the_blocking_check_and_skips_the_models(
    pipeline: Pipeline,
) -> None:
    assert pipeline.run_day(DAY).success
    key = _keys(pipeline, DAY)[0]
    other = DAY - timedelta(days=3)
    with pipeline.connect() as con:
        # The same call held twice: the second copy on another day, as a botched replay would.
        con.execute(
            "INSERT INTO calls SELECT * REPLACE (attempted_at - INTERVAL 3 DAY AS attempted_at) "
            "FROM calls WHERE call_key = $k",
            {"k": key},
        )
    result = pipeline.run_day(DAY)
    checks = _checks(result)
    assert not checks["call_key_unique"].passed
    assert key in str(checks["call_key_unique"].metadata["sample"].value)
    # Blocking: the day's models did not run.
    assert result.asset_materializations_for_node("answer_rates_daily") == []
    assert result.asset_materializations_for_node("call_durations_daily") == []
    assert other < DAY


def test_completeness_fails_when_a_fetched_call_is_not_in_the_table(pipeline: Pipeline) -> None:
    assert pipeline.run_day(DAY).success
    window = day_window(DAY, "UTC")
    keys = _keys(pipeline, DAY)
    facts = {"in_window": len(keys), "quarantined": 0, "api_total": len(keys)}
    with pipeline.open() as wh:
        # what a window load leaves on its connection: the keys it wrote (here, the day's)
        wh.con.execute("CREATE TEMP TABLE _window_keys AS SELECT unnest($k) AS key", {"k": keys})
        ok = evaluate_call_checks(wh, window, loaded=len(keys), rows_in_window=len(keys), **facts)
        assert {o.name: o.passed for o in ok}["calls_complete"]
        wh.con.execute("INSERT INTO _window_keys VALUES ('never-loaded-sid')")
        broken = evaluate_call_checks(
            wh, window, loaded=len(keys) + 1, rows_in_window=len(keys), **facts
        )
    complete = {o.name: o for o in broken}["calls_complete"]
    assert not complete.passed
    assert "never-loaded-sid" in complete.sample


def test_model_checks_fail_on_rows_built_to_break_them(pipeline: Pipeline) -> None:
    assert pipeline.run_day(DAY).success
    window = day_window(DAY, "UTC")
    with pipeline.open() as wh:
        for name in ("answer_rate_bounds", "model_attempts_match"):
            assert wh.check(name, start=window.start, end=window.end, day=DAY).passed
        wh.con.execute(
            "UPDATE answer_rates_daily SET answer_rate = 1.5, attempts = attempts + 1 "
            "WHERE day = $d AND trunk = (SELECT min(trunk) FROM answer_rates_daily WHERE day = $d)",
            {"d": DAY},
        )
        bounds = wh.check("answer_rate_bounds", start=window.start, end=window.end, day=DAY)
        match = wh.check("model_attempts_match", start=window.start, end=window.end, day=DAY)
    assert not bounds.passed
    assert match.violations == 1


def test_a_quarantined_record_warns_without_blocking_the_models(pipeline: Pipeline) -> None:
    broken = _record("00000000-0000-4000-8000-00000000bad2", DAY, duration="forever")
    pipeline.sim.add_records([broken])
    result = pipeline.run_day(DAY)
    assert result.success
    checks = _checks(result)
    assert not checks["nothing_quarantined"].passed
    assert checks["nothing_quarantined"].severity == dg.AssetCheckSeverity.WARN
    assert checks["calls_complete"].passed  # a quarantined record is accounted for
    assert _meta(result)["quarantined"] == 1
    assert result.asset_materializations_for_node("answer_rates_daily")
    with pipeline.connect(read_only=True) as con:
        ((reason,),) = con.execute("SELECT reason FROM calls_quarantine").fetchall()
    assert "duration" in reason
