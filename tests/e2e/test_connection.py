"""One warehouse connection per run (pipelines/resources.py WarehouseResource), in process.

A day's run (`calls`, its checks, the four models) opens the warehouse once: in the lake, one
connection, migrated once per process; on the DuckDB file, one connection for writing, opened once
the first chunk is ready, plus the read-only look at its schema before the first request. The file
is let go before each fetch of a range and when the run ends, so another process can write it
right after; a load that fails is rolled back, its connection dropped, and the step's retry opens
another. Every test runs in both lanes unless it is about the file itself.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import pipelines.calls as calls_module
from pipelines.jambonz.simulator import Simulator
from pipelines.models import MODELS
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW, each_lane
from tests.faults.conftest import MakePipeline, assert_window_exact
from tests.faults.conftest import make_pipeline as make_pipeline  # the fixture, shared
from warehouse.database import Warehouse
from warehouse.load import WarehouseConflictError, WindowLoad

DAYS = [NOW.date() - timedelta(days=n) for n in (4, 3, 2)]
ASSETS = ("calls", "alerts", *MODELS)

# another process opening the file for writing, at once (no wait for a lock): exit 0 when it could
WRITER = """
import sys
from warehouse.database import Warehouse
Warehouse(sys.argv[1], lock_timeout_s=0).close()
"""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)


@dataclass
class Opens:
    """What the runs did to the warehouse since the last `reset`."""

    opened: list[str] = field(default_factory=list)  # "write" / "read", a Warehouse each
    migration_checks: int = 0  # schema_version read by an open for writing (Warehouse._missing)
    schema_checks: int = 0  # schema_version read by check_schema (the look before any request)

    def reset(self) -> None:
        self.opened.clear()
        self.migration_checks = self.schema_checks = 0


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Opens:
    """Every Warehouse opened in this process, and every read of its schema_version."""
    seen = Opens()
    real_init, real_missing, real_check = (
        Warehouse.__init__,
        Warehouse._missing,
        Warehouse.check_schema,
    )

    def init(self: Warehouse, *args: Any, **kwargs: Any) -> None:
        seen.opened.append("read" if kwargs.get("read_only") else "write")
        real_init(self, *args, **kwargs)

    def missing(self: Warehouse, wanted: list[tuple[int, str, str]]) -> bool:
        seen.migration_checks += 1
        return real_missing(self, wanted)

    def check_schema(self: Warehouse) -> None:
        seen.schema_checks += 1
        real_check(self)

    monkeypatch.setattr(Warehouse, "__init__", init)
    monkeypatch.setattr(Warehouse, "_missing", missing)
    monkeypatch.setattr(Warehouse, "check_schema", check_schema)
    return seen


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        key.to_user_string()
        for e in result.get_asset_materialization_events()
        if (key := e.asset_key) is not None
    }


def writable_elsewhere(path: Path) -> bool:
    """Whether another process can open the DuckDB file for writing right now."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode == 0


def test_a_days_run_opens_the_warehouse_once(
    simulator: Simulator, make_pipeline: MakePipeline, opens: Opens
) -> None:
    pipeline = make_pipeline(simulator)
    on_lake = pipeline.lake is not None
    first = pipeline.run_day(DAYS[0])
    assert first.success
    assert _materialized(first) == set(ASSETS)
    # a lake: one connection for both loads, their checks and the models; the first open
    # migrates. A file: let go before the alerts' fetch, so one connection for the calls' load
    # and checks, then one for the alerts' and the models
    assert opens.opened == (["write"] if on_lake else ["write", "write"])
    assert (opens.migration_checks, opens.schema_checks) == (1 if on_lake else 2, 0)

    # the next run (in this process, as a test or a benchmark runs them; a deployment's run is
    # a process of its own, whose first open is as the one above)
    opens.reset()
    second = pipeline.run_day(DAYS[1])
    assert second.success
    assert _materialized(second) == set(ASSETS)
    if on_lake:
        # one connection; this process found the lake up to date: no migration check, but the
        # schema is read once before the first request (a newer release's is refused)
        assert opens.opened == ["write"]
        assert (opens.migration_checks, opens.schema_checks) == (0, 1)
    else:
        # the look at the file's schema before any request (read-only, closed before the first
        # request), then one connection for writing from each stream's first chunk on (let go
        # before the next stream's fetch), the last one to the run's end
        assert opens.opened == ["read", "write", "write"]
        assert (opens.migration_checks, opens.schema_checks) == (2, 1)
    for day in DAYS[:2]:
        assert assert_window_exact(pipeline, day) > 0


@pytest.mark.file_only  # the file's lock; a lake holds none
def test_the_file_is_let_go_when_the_run_ends(
    simulator: Simulator, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAYS[0]).success
    assert writable_elsewhere(pipeline.warehouse)  # released: another process writes it at once
    # a run that fails after its load (a blocking check) lets it go too
    with pipeline.connect() as con:
        con.execute(
            "INSERT INTO calls SELECT * REPLACE (attempted_at - INTERVAL 3 DAY AS attempted_at) "
            "FROM calls LIMIT 1"
        )
    failed = pipeline.run_day(DAYS[0])
    assert not all(e.passed for e in failed.get_asset_check_evaluations())
    assert _materialized(failed) == {"calls"}  # the models were skipped
    assert writable_elsewhere(pipeline.warehouse)
    assert pipeline.run_day(DAYS[1]).success  # and the next run opens it again


@pytest.mark.file_only  # the file's lock; a lake holds none
def test_a_range_lets_go_of_the_file_before_each_fetch(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    opens: Opens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fetch may wait minutes on the rate limit: no day of a range fetches holding the file,
    though the run's connection was open on the day before."""
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAYS[0]).success  # the file exists
    free_at_fetch: list[bool] = []
    real_load_stream = calls_module.load_stream

    def load_stream(*args: Any, **kwargs: Any) -> Any:
        free_at_fetch.append(writable_elsewhere(pipeline.warehouse))
        return real_load_stream(*args, **kwargs)

    monkeypatch.setattr(calls_module, "load_stream", load_stream)
    opens.reset()
    result = pipeline.run_range(DAYS[1], DAYS[2])
    assert result.success
    assert free_at_fetch == [True] * 4  # each day's calls, then each day's alerts
    # the look before the first day's fetch; one connection a day and stream for its load (each
    # taken again after its fetch), the last kept for the models of both days
    assert opens.opened == ["read", "write", "write", "write", "write"]
    assert writable_elsewhere(pipeline.warehouse)


def test_a_failed_load_is_rolled_back_and_the_retry_opens_a_new_connection(
    make_pipeline: MakePipeline, opens: Opens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load's second chunk fails as a lake commit that lost a race does (a transient
    failure): the first chunk is rolled back, the connection dropped, and the step's retry loads
    the day whole on another, which the models then share."""
    real_add: Callable[..., None] = WindowLoad.add
    adds = 0

    def add(self: WindowLoad, *args: Any) -> None:
        nonlocal adds
        adds += 1
        if adds == 2:
            raise WarehouseConflictError("the window's load lost a race: injected")
        real_add(self, *args)

    monkeypatch.setattr(WindowLoad, "add", add)
    with Simulator(seed=7, calls_per_day=1_600, now=NOW) as sim:
        pipeline = make_pipeline(
            sim, SYNC_CHUNK_RECORDS="500", SYNC_RETRIES="1", SYNC_RETRY_DELAY_S="0"
        )
        result = pipeline.run_day(DAYS[0])
        assert result.success
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert len(retried) == 1
        assert "lost a race: injected" in str(retried[0].event_specific_data)
        assert adds > 3  # the retry loaded every chunk again
        assert _materialized(result) == set(ASSETS)
        # the failed attempt's, then the retry's; then the alerts' (a file is let go before it)
        assert opens.opened.count("write") == (2 if pipeline.lake is not None else 3)
        assert assert_window_exact(pipeline, DAYS[0]) > 1_000
