"""Fixtures for driving the Dagster definitions against the simulator and a real warehouse: the
DuckDB file, or a DuckLake in a module that runs in both lanes (tests/conftest.py `each_lane`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.settings import REPO_ROOT, Settings, load_settings
from tests.conftest import NOW, lake_env
from warehouse.database import Warehouse, WarehouseUnopenableError
from warehouse.lake import Lake

ENV_VARS = (
    "JAMBONZ_BASE_URL",
    "JAMBONZ_API_KEY",
    "JAMBONZ_ACCOUNT_SID",
    "JAMBONZ_SERVICE_PROVIDER_SID",
    "WAREHOUSE_PATH",
    "WAREHOUSE_URL",
    "WAREHOUSE_DATA_PATH",
    "PARTITIONS_START_DATE",
    "PARTITIONS_TIMEZONE",
    "SYNC_SETTLE_MINUTES",
    "SYNC_LOOKBACK_DAYS",
    "JAMBONZ_RATE_LIMIT_RESERVE",
    "WAREHOUSE_LOCK_TIMEOUT_S",
    "WAREHOUSE_MEMORY_LIMIT",
    "SYNC_RETRIES",
    "SYNC_RETRY_DELAY_S",
    "SYNC_FRESHNESS_MARGIN_MINUTES",
    "SYNC_BACKFILL_MAX_DAYS",
    "SYNC_INTRADAY_MINUTES",
    "SYNC_CHUNK_RECORDS",
    "ALERT_WEBHOOK_URL",
    "NOTIFY_URLS",
    "DAGSTER_WEBSERVER_URL",
    "NUMBERS_DEFAULT_REGION",
    "DAGSTER_HOME",
)


Snapshot = dict[str, list[tuple[Any, ...]]] | None


@dataclass
class Pipeline:
    """The definitions wired to a simulator and a warehouse, as a user would configure them: the
    DuckDB file at `warehouse`, or the DuckLake `lake` when set (WAREHOUSE_URL)."""

    sim: Simulator
    env: dict[str, str]
    warehouse: Path
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    lake: Lake | None = None

    def open(self, *, read_only: bool = False) -> Warehouse:
        """The warehouse the runs write, in either lane."""
        return Warehouse(self.lake or self.warehouse, read_only=read_only)

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection on which the warehouse's tables are the default schema."""
        with self.open(read_only=read_only) as wh:
            yield wh.con

    def snapshot(self) -> Snapshot:
        """Every table of the warehouse (the file's or the lake's), every row, in a stable
        order; None when nothing was written: no file, or a lake none of whose tables holds a
        row (its schema, and the schema_version rows, are created before the first request by
        the check that the catalog and data path answer, so they do not count)."""
        if self.lake is None and not self.warehouse.exists():
            return None
        try:
            with self.connect(read_only=True) as con:
                rows = {
                    name: con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()  # noqa: S608
                    for name in tables(con)
                }
        except WarehouseUnopenableError:
            if self.lake is None:
                raise
            return None  # the lake was never created
        if self.lake is not None and not any(v for k, v in rows.items() if k != "schema_version"):
            return None
        return rows

    def written(self) -> bool:
        """Whether anything was written (see `snapshot`)."""
        return self.snapshot() is not None

    def run_day(
        self, day: date, *, raise_on_error: bool = False, assets: tuple[str, ...] = ()
    ) -> dg.ExecuteInProcessResult:
        """A run of `daily_sync` for `day`; of its `assets` only when given (a test of the
        syncs, not the models, skips rebuilding them)."""
        job = self.defs.resolve_job_def("daily_sync")
        return job.execute_in_process(
            partition_key=day.isoformat(),
            instance=self.instance,
            raise_on_error=raise_on_error,
            asset_selection=[dg.AssetKey(a) for a in assets] or None,
        )

    def run_range(
        self, first: date, last: date, *, job: str = "daily_sync"
    ) -> dg.ExecuteInProcessResult:
        """One run of every day in [first, last], as a UI backfill or `dg launch
        --partition-range` launches it (the assets' single-run backfill policy)."""
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, tags=tags, raise_on_error=False
        )

    def run_today(self, day: date, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        """One run of the intra-day sync of `day`, as the intraday_calls_sync sensor asks."""
        return self.defs.resolve_job_def("intraday_sync").execute_in_process(
            instance=self.instance,
            run_config={"ops": {"calls_today": {"config": {"day": day.isoformat()}}}},
            tags={"jambonz/sync": "intraday", "jambonz/day": day.isoformat()},
            raise_on_error=raise_on_error,
        )

    def truth(self, day: date) -> list[dict[str, object]]:
        w = day_window(day, self.settings.partitions_timezone)
        return self.sim.calls(simmod.ACCOUNT_SID, w.start, w.end)


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The warehouse's own tables (the file's or the lake's, attached as the current database)."""
    query = "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
    return [name for (name,) in con.execute(query + "ORDER BY table_name").fetchall()]


def pipeline_env(
    sim: Simulator, warehouse: Path, lake: Lake | None = None, **extra: str
) -> dict[str, str]:
    """The settings of a run against `sim` (or the JAMBONZ_BASE_URL given: a server that is not
    up yet), writing the file `warehouse`, or `lake` when given."""
    return {
        "JAMBONZ_BASE_URL": extra.get("JAMBONZ_BASE_URL") or sim.base_url,
        "JAMBONZ_API_KEY": simmod.ACCOUNT_KEY,
        "JAMBONZ_ACCOUNT_SID": simmod.ACCOUNT_SID,
        "WAREHOUSE_PATH": str(warehouse),
        "PARTITIONS_START_DATE": (NOW.date() - timedelta(days=20)).isoformat(),
        "PARTITIONS_TIMEZONE": "UTC",
        # A failed step fails its run at once, as the fault campaign expects; the tests of
        # step retries (tests/faults/test_between_runs.py) set their own.
        "SYNC_RETRIES": "0",
        **lake_env(lake),
        **extra,
    }


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pipeline(
    simulator: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
    lane: Lake | None,
) -> Iterator[Pipeline]:
    """The definitions on the simulator, writing the lane's warehouse (the file by default)."""
    warehouse = tmp_path / "warehouse.duckdb"
    env = pipeline_env(simulator, warehouse, lane)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    with dg.DagsterInstance.ephemeral() as instance:
        defs = build_definitions(settings)
        yield Pipeline(simulator, env, warehouse, settings, defs, instance, lane)


# --- the dagster CLI in subprocesses -------------------------------------------------------------

BIN = Path(sys.executable).parent

READER = """
import select, sys
from pipelines.settings import load_settings
from warehouse.database import Warehouse
target = load_settings().warehouse_target  # the file or the lake the environment names
n = 0
while True:
    with Warehouse(target, read_only=True, lock_timeout_s=300) as wh:
        wh.con.execute("SELECT count(*) FROM calls").fetchall()
    n += 1
    # a reader's pace between queries, and the test closing stdin is the signal to stop
    if select.select([sys.stdin], [], [], 0.2)[0]:
        break
print("reads", n)
"""


def cli_env(
    sim: Simulator, tmp_path: Path, lake: Lake | None = None, **extra: str
) -> tuple[dict[str, str], Path]:
    """An environment for the dagster CLI and a DAGSTER_HOME under tmp_path holding the
    repository's own dagster.yaml (run queue, run retries); every instance file lives under it.
    The warehouse: tmp_path/warehouse.duckdb, or `lake` when given."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(pipeline_env(sim, tmp_path / "warehouse.duckdb", lake, **extra))
    env["DAGSTER_HOME"] = str(home)
    return env, home


# a day's assets: `calls` and everything downstream of it (not calls_today, which syncs today)
MATERIALIZE = ("asset", "materialize", "-m", "pipelines.definitions", "--select", "calls*")


def materialize(env: dict[str, str], home: Path, partition: str) -> subprocess.Popen[str]:
    """`dagster asset materialize` of a day's assets (`calls*`), output merged into stdout."""
    return subprocess.Popen(
        [str(BIN / "dagster"), *MATERIALIZE, "--partition", partition],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def call_keys(env: dict[str, str]) -> list[str]:
    """Every call_key in the warehouse `env` names (WAREHOUSE_PATH, or WAREHOUSE_URL's lake)."""
    with Warehouse(load_settings(env).warehouse_target, read_only=True) as wh:
        return [key for (key,) in wh.con.execute("SELECT call_key FROM calls").fetchall()]


def start_reader(env: dict[str, str]) -> subprocess.Popen[str]:
    """Another process that queries the warehouse `env` names read-only, as an analyst would,
    until stopped."""
    return subprocess.Popen(
        [sys.executable, "-c", READER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_reader(reader: subprocess.Popen[str]) -> int:
    """Stop the reader; the number of reads it completed (each opened and closed the
    warehouse)."""
    out, _ = reader.communicate(input="", timeout=300)
    assert reader.returncode == 0, out[-3000:]
    return int(out.split("reads")[-1])


@contextmanager
def running_daemon(env: dict[str, str], home: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the instance at `home`, its output in `log`; stopped on exit."""
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield daemon
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)


def submit_backfill(env: dict[str, str], cwd: Path, first: date, last: date) -> None:
    """`dagster job backfill` of daily_sync over [first, last]: runs queued for the daemon."""
    args = [str(BIN / "dagster"), "job", "backfill", "-m", "pipelines.definitions"]
    args += ["-j", "daily_sync", "--from", first.isoformat(), "--to", last.isoformat()]
    done = subprocess.run(
        [*args, "--noprompt"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
