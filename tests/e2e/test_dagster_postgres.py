"""Dagster's own instance in PostgreSQL (docs/deploy/dagster.yaml), as on several machines.

Two DAGSTER_HOMEs stand for two machines: each holds a copy of docs/deploy/dagster.yaml and
nothing else, and both point at one PostgreSQL database for the instance and one DuckLake for
the warehouse. What one submits, the other's daemon runs; what one turns on, the other sees.
The password reaches libpq through PGPASSWORD only and must not appear in the instance's tables,
the daemon's output or any run's config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.postgres import Postgres
from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import BIN, ENV_VARS, pipeline_env, running_daemon, submit_backfill
from tests.e2e.test_cli import truth_keys
from warehouse.database import Warehouse
from warehouse.lake import Lake

pytestmark = pytest.mark.process

DAYS = [NOW.date() - timedelta(days=n) for n in range(2, 0, -1)]
DEPLOY_YAML = REPO_ROOT / "docs" / "deploy" / "dagster.yaml"


def _machine(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """A DAGSTER_HOME holding only the deployment's dagster.yaml: one 'machine'."""
    home = tmp_path / name
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    return {**env, "DAGSTER_HOME": str(home)}, home


def _dagster(env: dict[str, str], workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "dagster"), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def _compute_log_runs(home: Path) -> set[str]:
    """The runs whose step output this machine's local compute log manager holds."""
    return {p.name for p in (home / "storage").glob("*") if p.is_dir()}


def _finished_runs(home: Path, expected: int, timeout_s: float) -> list[dg.DagsterRun]:
    """The instance's runs once `expected` backfill runs exist and every run is finished."""
    deadline = time.monotonic() + timeout_s
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while True:
            runs = list(instance.get_runs())
            backfill = [r for r in runs if r.tags.get("dagster/backfill")]
            if len(backfill) >= expected and all(r.is_finished for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"runs unfinished after {timeout_s}s: {runs!r}")
            time.sleep(1.0)  # polling a condition with a deadline, not synchronizing on time


@pytest.mark.timeout(600)
def test_two_machines_share_one_instance_in_postgres(
    postgres: Postgres, lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two DAGSTER_HOMEs on one PostgreSQL instance database: one CLI queues a backfill, the
    other's daemon runs it. Two processes that share nothing but the database are the point."""
    instance_db = postgres.new_database("dagster_instance")
    with Simulator(seed=21, calls_per_day=120, now=NOW) as sim:
        base = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        base.update(pipeline_env(sim, tmp_path / "unused.duckdb"))
        base.update(
            WAREHOUSE_URL=lake.url,
            WAREHOUSE_DATA_PATH=lake.data_path,
            PARTITIONS_START_DATE=DAYS[0].isoformat(),
            DAGSTER_PG_HOST="127.0.0.1",
            DAGSTER_PG_PORT=str(postgres.port),
            DAGSTER_PG_USER=postgres.user,
            DAGSTER_PG_DB=instance_db,
            **postgres.env(),  # PGPASSWORD: libpq's, for the instance and the lake's catalog
        )
        for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_DB"):
            monkeypatch.setenv(key, base[key])  # this process reads the instance too
        env_a, home_a = _machine(tmp_path, "machine_a", base)
        env_b, home_b = _machine(tmp_path, "machine_b", base)

        # Every machine starts Dagster in the same working directory, as one image does:
        # Dagster keys a schedule's state by its code location, which includes that directory.
        workdir = tmp_path
        # machine A turns the daily schedule on; machine B's list shows it running
        start = ("schedule", "start", "-m", "pipelines.definitions", "daily_calls_sync")
        _dagster(env_a, workdir, *start)
        listed = _dagster(env_b, workdir, "schedule", "list", "-m", "pipelines.definitions")
        assert "Schedule: daily_calls_sync [RUNNING]" in listed, listed

        # machine A queues a backfill; machine B's daemon (nothing shared but the database and
        # the lake) dequeues and runs it
        with running_daemon(env_b, workdir, tmp_path / "daemon_b.log"):
            submit_backfill(env_a, workdir, DAYS[0], DAYS[-1])
            runs = _finished_runs(home_a, expected=len(DAYS), timeout_s=480)  # A reads B's runs
        daemon_log = (tmp_path / "daemon_b.log").read_text()

        failed = [
            (r.tags.get("dagster/partition"), r.status)
            for r in runs
            if r.status != dg.DagsterRunStatus.SUCCESS
        ]
        assert not failed, [*failed, daemon_log[-3000:]]
        # the daemon's freshness sensor launches runs of its own; the backfill's are these
        backfill = [r for r in runs if r.tags.get("dagster/backfill")]
        assert sorted(r.tags["dagster/partition"] for r in backfill) == [
            d.isoformat() for d in DAYS
        ]
        # the runs happened on B: their compute logs are in B's folder, none in A's
        assert {r.run_id for r in runs} <= _compute_log_runs(home_b), daemon_log[-3000:]
        assert not _compute_log_runs(home_a)
        assert not list(home_a.rglob("*.db"))  # no SQLite storage on either machine
        assert not list(home_b.rglob("*.db"))
        with Warehouse(lake, read_only=True) as wh:
            keys = [k for (k,) in wh.con.execute("SELECT call_key FROM calls").fetchall()]
        assert len(keys) == len(set(keys))
        assert set(keys) == truth_keys(sim, env_a, DAYS)

        # the instance's database holds the runs' events, and never the password
        dump = postgres.dump(instance_db)
        assert dump.count("ASSET_MATERIALIZATION") >= len(DAYS)
        for place, text in {"instance database": dump, "daemon output": daemon_log}.items():
            assert postgres.password not in text, f"the PostgreSQL password is in the {place}"
