"""A range of days in one run (pipelines/days.py), in-process through the real definitions.

Each day keeps its own window, transaction, checks and metadata; one bad day fails alone; a run
longer than SYNC_BACKFILL_MAX_DAYS is refused before any request. The CLI and UI paths to the same
run are in tests/e2e/test_dg.py.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.models import MODELS
from pipelines.partitions import day_window
from pipelines.retries import TransientFailure, retrying_in_place
from pipelines.settings import load_settings
from tests.conftest import NOW, each_lane
from tests.e2e.conftest import Pipeline
from tests.e2e.test_dagster_sync import _keys, _truth_keys

DAYS = [NOW.date() - timedelta(days=n) for n in (4, 3, 2)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)  # the conftest's `pipeline` fixture, in the file and in a fresh lake


def _by_day(result: dg.ExecuteInProcessResult, node: str) -> dict[str, dict[str, object]]:
    """The run's materializations of `node`, partition -> metadata as plain values."""
    mats = result.asset_materializations_for_node(node)
    by_day = {m.partition: {k: getattr(v, "value", v) for k, v in m.metadata.items()} for m in mats}
    assert len(by_day) == len(mats), "a day was materialized twice in one run"
    return {str(k): v for k, v in by_day.items()}


def test_a_range_is_one_run_and_each_day_is_recorded_as_its_own(pipeline: Pipeline) -> None:
    result = pipeline.run_range(DAYS[0], DAYS[-1])
    assert result.success
    calls = _by_day(result, "calls")
    assert sorted(calls) == [d.isoformat() for d in DAYS]
    for day in DAYS:
        meta, window = calls[day.isoformat()], day_window(day, "UTC")
        assert meta["window_start_utc"] == window.start.isoformat()
        assert meta["api_total"] == len(pipeline.truth(day))
        assert meta["dagster/row_count"] == len(_keys(pipeline, day))
        assert set(_keys(pipeline, day)) == _truth_keys(pipeline, day)
        assert len(_keys(pipeline, day)) == len(set(_keys(pipeline, day)))
    for name in MODELS:
        models = _by_day(result, name)
        assert sorted(models) == [d.isoformat() for d in DAYS]
        assert all(m["day"] == k for k, m in models.items())
    # every check of every day, attached to that day's partition
    evaluations = result.get_asset_check_evaluations()
    calls_checks = {
        (e.partition, e.check_name) for e in evaluations if e.asset_key.path == ["calls"]
    }
    assert {p for p, _ in calls_checks} == {d.isoformat() for d in DAYS}
    assert len(calls_checks) == 7 * len(DAYS)
    assert all(
        e.passed for e in evaluations if e.check_name in ("calls_complete", "call_key_unique")
    )
    # what the UI's partition view reads: each day materialized, with its own counts
    assert pipeline.instance.get_materialized_partitions(dg.AssetKey("calls")) == {
        d.isoformat() for d in DAYS
    }
    single = pipeline.run_day(DAYS[1])
    alone = _by_day(single, "calls")[DAYS[1].isoformat()]
    assert set(alone) == set(calls[DAYS[1].isoformat()])
    assert alone["api_total"] == calls[DAYS[1].isoformat()]["api_total"]
    assert (alone["inserted"], alone["updated"]) == (0, 0)  # the range left exactly that day


def test_one_bad_day_fails_alone_and_the_other_days_commit(pipeline: Pipeline) -> None:
    # the range's first request is answered 400: a mistake no retry fixes, for the first day only
    pipeline.sim.faults.server_error_status = 400
    pipeline.sim.faults.server_errors = 1
    result = pipeline.run_range(DAYS[0], DAYS[-1])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "1 of 3 days failed" in message, message
    assert f"{DAYS[0].isoformat()}: partition {DAYS[0]}" in message, message
    assert sorted(_by_day(result, "calls")) == [d.isoformat() for d in DAYS[1:]]
    assert _keys(pipeline, DAYS[0]) == []
    for day in DAYS[1:]:
        assert set(_keys(pipeline, day)) == _truth_keys(pipeline, day)
    assert pipeline.instance.get_materialized_partitions(dg.AssetKey("calls")) == {
        d.isoformat() for d in DAYS[1:]
    }
    evaluated = {e.partition for e in result.get_asset_check_evaluations()}
    assert evaluated == {d.isoformat() for d in DAYS[1:]}
    # the failed day alone, run again, completes the range
    again = pipeline.run_day(DAYS[0])
    assert again.success
    assert set(_keys(pipeline, DAYS[0])) == _truth_keys(pipeline, DAYS[0])


def test_a_run_longer_than_the_bound_is_refused_before_any_request(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_BACKFILL_MAX_DAYS", "2")
    defs = build_definitions(load_settings())
    pipeline = dataclasses.replace(pipeline, defs=defs)
    result = pipeline.run_range(DAYS[0], DAYS[-1])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "holds 3 days" in message, message
    assert "SYNC_BACKFILL_MAX_DAYS=2" in message, message
    assert pipeline.sim.request_log == []
    assert not pipeline.written()


def test_a_transient_failure_in_a_range_is_tried_again_in_place() -> None:
    context = dg.build_asset_context()
    failures = iter(["jambonz answered 503", "jambonz answered 503"])

    def attempt() -> date:
        why = next(failures, None)
        if why:
            raise TransientFailure(description=why)
        return DAYS[0]

    assert retrying_in_place(context, 2, 0.0, attempt) == DAYS[0]
    failures = iter(["held", "held"])
    with pytest.raises(dg.Failure) as raised:
        retrying_in_place(context, 1, 0.0, attempt)
    assert raised.value.description == "held (gave up after 2 attempts)"


def test_a_day_jambonz_failed_mid_range_is_synced_again_and_the_run_succeeds(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the first day's requests draw 503s until the client gives up (its 6
    attempts); the run tries that day again in place, and every day of the range is whole."""
    monkeypatch.setenv("SYNC_RETRIES", "1")
    monkeypatch.setenv("SYNC_RETRY_DELAY_S", "0")
    pipeline = dataclasses.replace(pipeline, defs=build_definitions(load_settings()))
    pipeline.sim.faults.server_errors = 6
    result = pipeline.run_range(DAYS[0], DAYS[-1])
    assert result.success
    assert sorted(_by_day(result, "calls")) == [d.isoformat() for d in DAYS]
    for day in DAYS:
        keys = _keys(pipeline, day)
        assert set(keys) == _truth_keys(pipeline, day)
        assert len(keys) == len(set(keys))
    statuses = [e["status"] for e in pipeline.sim.request_log]
    assert statuses[:6] == [503] * 6
    assert 503 not in statuses[6:]
    logs = [e.user_message for e in pipeline.instance.all_logs(result.run_id)]
    retried = [m for m in logs if "trying again" in m and DAYS[0].isoformat() in m]
    assert retried, "the run's log does not say the first day was tried again"
