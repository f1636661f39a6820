"""The fault campaign's harness: pipelines wired for fast retries, table snapshots, oracles.

Every test that uses `make_pipeline` (or the `lane` fixture) runs in both lanes, as [file] (the
DuckDB file, WAREHOUSE_PATH) and [lake] (a fresh DuckLake in PostgreSQL, WAREHOUSE_URL); one
marked `file_only` is about the DuckDB file itself and runs as [file] alone.

Every fault test ends in one of two states and says which:
- `assert_window_exact`: every call of the window is in `calls` exactly once, with the values
  `normalize` gives the API's records (its ground truth: `Simulator.calls`), and the window's bad
  records are in `calls_quarantine`;
- `assert_failed_cleanly`: the run failed with a message naming the cause and the partition day,
  and `Pipeline.snapshot` of every table equals the one taken before the run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.resources import JambonzResource
from pipelines.settings import load_settings
from tests import oracle
from tests.conftest import database_name, each_lane, new_lake
from tests.e2e.conftest import Pipeline, Snapshot, clean_env, pipeline_env
from tests.faults.processes import Proc
from warehouse.lake import Lake

__all__ = ["clean_env"]  # the fixture, for the tests of this folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)


# Small enough for a campaign to run in seconds, large enough to ride out the faults it injects.
FAST = {
    "timeout_s": 1.0,
    "max_attempts": 5,
    "max_retry_s": 20.0,
    "backoff_base_s": 0.01,
    "backoff_cap_s": 0.05,
}

MakePipeline = Callable[..., Pipeline]
SYNCS = ("calls", "alerts")  # Pipeline.run_day's assets for a test of what lands, not the models


@pytest.fixture
def make_pipeline(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
    lane: Lake | None,
    request: pytest.FixtureRequest,
) -> Iterator[MakePipeline]:
    """make_pipeline(sim, base_url=None, warehouse=None, jambonz={...}, **env) -> a Pipeline with
    fast retries, writing the lane's warehouse: tmp_path/warehouse.duckdb or the lane's lake.

    The definitions are the real ones (build_definitions from the settings the env gives); only
    the jambonz resource's retry bounds are made small, as an operator could set them. `warehouse`
    is a warehouse of its own: that file, or in the lake lane a new lake beside it.
    """
    stack = contextlib.ExitStack()

    def make(
        sim: Simulator,
        *,
        base_url: str | None = None,
        warehouse: Path | None = None,
        jambonz: dict[str, Any] | None = None,
        **env: str,
    ) -> Pipeline:
        lake = lane
        if lane is not None and warehouse is not None:
            name = database_name(str(warehouse))
            lake = new_lake(request.getfixturevalue("postgres"), name, warehouse.parent / "lake")
        path = warehouse or tmp_path / "warehouse.duckdb"
        if base_url is not None:
            env = {**env, "JAMBONZ_BASE_URL": base_url}
        values = pipeline_env(sim, path, lake, **env)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        defs = build_definitions(settings)
        resource = JambonzResource(
            base_url=settings.base_url,
            api_key=dg.EnvVar("JAMBONZ_API_KEY"),
            account_sid=settings.account_sid,
            service_provider_sid=settings.service_provider_sid,
            reserve=settings.rate_limit_reserve,
            **{**FAST, **(jambonz or {})},
        )
        defs = dg.Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=defs.jobs,
            schedules=defs.schedules,
            sensors=defs.sensors,
            resources={**(defs.resources or {}), "jambonz": resource},
            executor=defs.executor,
        )
        instance = stack.enter_context(dg.DagsterInstance.ephemeral())
        target = settings.warehouse_target  # the lake the env names, whoever named it
        named = target if isinstance(target, Lake) else None
        return Pipeline(sim, values, path, settings, defs, instance, named)

    with stack:
        yield make


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run was expected to fail"
    error = failures[0].step_failure_data.error
    assert error is not None
    return error.message


def assert_failed_cleanly(
    pipeline: Pipeline,
    result: dg.ExecuteInProcessResult,
    before: Snapshot,
    day: date,
    *causes: str,
) -> str:
    """The run failed, saying why and for which day, and no table changed."""
    assert not result.success
    message = failure_message(result)
    assert day.isoformat() in message, message
    for cause in causes:
        assert cause in message, message
    assert pipeline.snapshot() == before
    return message


def assert_window_exact(pipeline: Pipeline, day: date, *, alerts: bool = True) -> int:
    """Every call of the window once, with the right values; its bad records quarantined; and
    (alerts=True) every alert of it likewise (assert_alerts_exact).

    The right values come from tests/oracle.py, docs/models.md's rules written again from the
    simulator's own records (`Simulator.calls`), so a bug of the normalizer cannot pass. Returns
    the number of calls of the window.
    """
    window = day_window(day, pipeline.settings.partitions_timezone)
    want = oracle.expected(pipeline.sim.calls(simmod.ACCOUNT_SID, window.start, window.end))
    columns = [c for c in oracle.COLUMNS if c != "call_key"] + ["extra"]
    bounds = {"s": window.start, "e": window.end}
    select = ", ".join(f'"{c}"' for c in columns)
    with pipeline.connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT call_key, {select} FROM calls "  # noqa: S608 - the oracle's column names
            "WHERE attempted_at >= $s AND attempted_at < $e ORDER BY call_key",
            bounds,
        ).fetchall()
        raw = con.execute(
            "SELECT count(*) FROM calls_raw WHERE attempted_at >= $s AND attempted_at < $e",
            bounds,
        ).fetchall()[0][0]
        quarantined = con.execute(
            "SELECT count(*) FROM calls_quarantine WHERE window_start = $s AND window_end = $e",
            bounds,
        ).fetchall()[0][0]
    keys = [r[0] for r in rows]
    doubled = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) < len(keys) else []
    assert doubled == [], f"calls held more than once: {doubled[:5]}"
    got = {}
    for key, *values in rows:
        row = dict(zip(columns, values, strict=True))
        row["extra"] = json.loads(row["extra"]) if row["extra"] is not None else None
        got[key] = row
    missing = sorted(want.rows.keys() - got.keys())
    unexpected = sorted(got.keys() - want.rows.keys())
    assert missing == [], f"calls of the window not in calls: {missing[:5]}"
    assert unexpected == [], f"rows in calls the API did not send: {unexpected[:5]}"
    wrong = [
        (key, column, got[key][column], value)
        for key, row in want.rows.items()
        for column, value in row.items()
        if column != "call_key" and got[key][column] != value
    ]
    assert wrong == [], f"calls with other values (call, column, held, expected): {wrong[:5]}"
    assert raw == len(want.rows), "one raw payload a call"
    assert quarantined == want.refused, "every refused record quarantined, once"
    if alerts:
        assert_alerts_exact(pipeline, day)
    return len(want.rows)


def assert_alerts_exact(pipeline: Pipeline, day: date) -> int:
    """Every alert of the window once, with the values tests/oracle.py gives the simulator's
    own alerts (`Simulator.alerts`); its bad records quarantined. Returns the alerts' number."""
    window = day_window(day, pipeline.settings.partitions_timezone)
    want = oracle.expected_alerts(pipeline.sim.alerts(simmod.ACCOUNT_SID, window.start, window.end))
    bounds = {"s": window.start, "e": window.end}
    with pipeline.connect(read_only=True) as con:
        cur = con.execute(
            "SELECT * EXCLUDE (synced_at) FROM alerts WHERE alerted_at >= $s AND alerted_at < $e",
            bounds,
        )
        names = [d[0] for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        (raw,), (quarantined,) = (
            con.execute(
                "SELECT count(*) FROM alerts_raw WHERE alerted_at >= $s AND alerted_at < $e",
                bounds,
            ).fetchall()[0],
            con.execute(
                "SELECT count(*) FROM alerts_quarantine"
                " WHERE window_start = $s AND window_end = $e",
                bounds,
            ).fetchall()[0],
        )
    keys = [r["alert_key"] for r in rows]
    assert len(keys) == len(set(keys)), "alerts held more than once"
    got = {}
    for row in rows:
        row["extra"] = json.loads(row["extra"]) if row["extra"] is not None else None
        got[row["alert_key"]] = row
    assert sorted(want.rows.keys() - got.keys()) == [], "alerts of the window not in alerts"
    assert sorted(got.keys() - want.rows.keys()) == [], "rows in alerts the API did not send"
    wrong = [(k, got[k], row) for k, row in want.rows.items() if got[k] != row]
    assert wrong == [], f"alerts with other values (held, expected): {wrong[:3]}"
    assert raw == len(want.rows), "one raw payload an alert"
    assert quarantined == want.refused, "every refused alert quarantined, once"
    return len(want.rows)


def materialization(result: dg.ExecuteInProcessResult, node: str = "calls") -> dict[str, Any]:
    """The metadata of the run's one materialization of `node`, as plain values."""
    mats = result.asset_materializations_for_node(node)
    assert len(mats) == 1
    return {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()
