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
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.normalize import normalize
from pipelines.partitions import day_window
from pipelines.resources import JambonzResource
from pipelines.settings import load_settings
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


def _rows(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> list[Any]:
    return con.execute(query, params).fetchall()


def assert_window_exact(pipeline: Pipeline, day: date) -> int:
    """Every call of the window once, with the right values; its bad records quarantined.

    Returns the number of calls of the window.
    """
    window = day_window(day, pipeline.settings.partitions_timezone)
    truth = pipeline.sim.calls(simmod.ACCOUNT_SID, window.start, window.end)
    expected = normalize(
        truth,
        synced_at=datetime.now(UTC),
        scope_sid=simmod.ACCOUNT_SID,
        window_start=window.start,
        window_end=window.end,
    )
    bounds = {"s": window.start, "e": window.end}
    with pipeline.connect(read_only=True) as con:
        con.register("expected", expected.calls)
        columns = ", ".join(
            f'"{c}"::VARCHAR' if c == "extra" else f'"{c}"'
            for c in expected.calls.column_names
            if c != "synced_at"
        )
        calls_in_window = (
            f"SELECT {columns} FROM calls "  # noqa: S608 - column names from the schema
            "WHERE attempted_at >= $s AND attempted_at < $e"
        )
        want = f"SELECT {columns} FROM expected"  # noqa: S608
        missing = _rows(con, f"{want} EXCEPT ALL {calls_in_window} LIMIT 5", bounds)
        unexpected = _rows(con, f"{calls_in_window} EXCEPT ALL {want} LIMIT 5", bounds)
        n_got = _rows(con, f"SELECT count(*) FROM ({calls_in_window})", bounds)[0][0]  # noqa: S608
        keys = _rows(
            con,
            "SELECT call_key, count(*) FROM calls WHERE call_key IN (SELECT call_key FROM "
            "expected) GROUP BY call_key HAVING count(*) > 1",
            {},
        )
        raw = _rows(
            con,
            "SELECT count(*) FROM calls_raw r JOIN expected e USING (call_key)",
            {},
        )[0][0]
        quarantined = {
            r[0]
            for r in _rows(
                con,
                "SELECT record_key FROM calls_quarantine "
                "WHERE window_start = $s AND window_end = $e",
                bounds,
            )
        }
    n_want = expected.calls.num_rows
    assert keys == [], f"calls held more than once: {keys[:5]}"
    assert missing == [], f"expected rows not in calls (or with other values): {missing}"
    assert unexpected == [], f"rows in calls the API did not send: {unexpected}"
    assert n_got == n_want
    assert raw == n_want
    assert set(expected.quarantine.column("record_key").to_pylist()) <= quarantined
    return n_want


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
