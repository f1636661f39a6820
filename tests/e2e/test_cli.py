"""The real CLIs in subprocesses: `dagster` finds the code location, `dg launch` runs a day.

Each run test runs in both lanes: the DuckDB file, and a DuckLake in PostgreSQL (WAREHOUSE_URL).
"""

from __future__ import annotations

import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW, each_lane
from tests.e2e.conftest import (
    BIN,
    ENV_VARS,
    call_keys,
    cli_env,
)
from tests.helpers import record_identity
from warehouse.lake import Lake, extension_file

pytestmark = pytest.mark.process


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)  # a test taking `lane` runs on the file and on a fresh lake


def truth_keys(sim: Simulator, env: dict[str, str], days: list[date]) -> set[str]:
    """call_keys of every call the simulator holds for these UTC days."""
    keys: set[str] = set()
    for day in days:
        w = day_window(day, "UTC")
        keys |= {record_identity(r) for r in sim.calls(env["JAMBONZ_ACCOUNT_SID"], w.start, w.end)}
    return keys


def test_dagster_finds_the_code_location_from_the_repo_root_with_nothing_set() -> None:
    """`dagster definitions validate` from the repository root finds the code location through
    pyproject.toml's [tool.dagster] alone: what the CLI reads, no in-process call reads."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    proc = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "jambonz_warehouse" in proc.stdout + proc.stderr


def duckdb_cli_args(env: dict[str, str], lane: Lake | None) -> list[str]:
    """The DuckDB CLI's arguments (before the query) the README gives for reading the warehouse:
    the file, read-only; or the lake (docs/lake.md "Reading the lake": the registry's CLI is
    1.5.6, the extension files are built for 1.5.5, so it is told not to mind the patch
    version)."""
    if lane is None:
        return ["-readonly", env["WAREHOUSE_PATH"]]
    setup = ["SET allow_extensions_metadata_mismatch = true"]
    setup += [f"LOAD '{extension_file(name)}'" for name in ("postgres_scanner", "ducklake")]
    setup += [f"ATTACH '{lane.url}' AS warehouse (READ_ONLY)", "USE warehouse"]
    return ["-unsigned", "-cmd", "; ".join(setup)]


def test_cli_materializes_a_partition(
    simulator: Simulator, tmp_path: Path, lane: Lake | None
) -> None:
    """`dg launch --assets 'calls*' --partition`, as the README gives it: `dg`'s own way to the
    definitions from the repository root, the CLI's instance (DAGSTER_HOME with the repository's
    dagster.yaml), its output free of the key, and the DuckDB CLI the README names reading what
    it wrote from another process."""
    env, home = cli_env(simulator, tmp_path, lane)
    day = NOW.date() - timedelta(days=2)
    proc = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", "calls*", "--partition", day.isoformat()],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "RUN_SUCCESS" in out
    assert set(call_keys(env)) == truth_keys(simulator, env, [day])
    assert env["JAMBONZ_API_KEY"] not in out
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the run is in DAGSTER_HOME
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]
    # the DuckDB CLI the README names (the registry's duckdb-cli) reads what the run wrote
    query = "SELECT count(*), count(DISTINCT call_key) FROM calls"
    cli = subprocess.run(
        [str(BIN / "duckdb"), *duckdb_cli_args(env, lane), "-csv", "-noheader", "-c", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    n = len(truth_keys(simulator, env, [day]))
    assert cli.stdout.split() == [f"{n},{n}"]
