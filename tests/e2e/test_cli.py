"""The real `dagster` CLI in subprocesses: a partition, and five partitions as concurrent runs.

Each run test runs in both lanes: the DuckDB file, and a DuckLake in PostgreSQL (WAREHOUSE_URL).
"""

from __future__ import annotations

import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.jambonz.records import record_identity
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW, each_lane
from tests.e2e.conftest import (
    BIN,
    ENV_VARS,
    call_keys,
    cli_env,
    materialize,
    start_reader,
    stop_reader,
)
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
    the file, read-only; or the lake ("Reading the lake": the registry's CLI is 1.5.6, the
    extension files are built for 1.5.5, so it is told not to mind the patch version)."""
    if lane is None:
        return ["-readonly", env["WAREHOUSE_PATH"]]
    setup = ["SET allow_extensions_metadata_mismatch = true"]
    setup += [f"LOAD '{extension_file(name)}'" for name in ("postgres_scanner", "ducklake")]
    setup += [f"ATTACH '{lane.url}' AS warehouse (READ_ONLY)", "USE warehouse"]
    return ["-unsigned", "-cmd", "; ".join(setup)]


def test_cli_materializes_a_partition(
    simulator: Simulator, tmp_path: Path, lane: Lake | None
) -> None:
    """`dagster asset materialize` as a user types it: the CLI's own instance (DAGSTER_HOME with
    the repository's dagster.yaml), its output free of the key, and the DuckDB CLI the README
    names reading what it wrote from another process."""
    env, home = cli_env(simulator, tmp_path, lane)
    day = NOW.date() - timedelta(days=2)
    proc = materialize(env, home, day.isoformat())
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert "RUN_SUCCESS" in out
    assert set(call_keys(env)) == truth_keys(simulator, env, [day])
    assert env["JAMBONZ_API_KEY"] not in out
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


# the lake's parallel writers and reader: tests/e2e/test_lake.py (four days and a fifth run of
# one of them beside a reader that holds its session open)
@pytest.mark.file_only
def test_five_partitions_as_concurrent_runs_with_a_reader(
    simulator: Simulator, tmp_path: Path, lane: Lake | None
) -> None:
    """Five runs in five processes at once and a reader in a sixth: the file's lock is a
    process's lock, so only processes can show that runs take turns and readers never fail."""
    env, home = cli_env(simulator, tmp_path, lane)
    days = [NOW.date() - timedelta(days=n) for n in range(2, 7)]
    # The warehouse exists before the runs start so the reader can open it from its first read.
    first = materialize(env, home, days[0].isoformat())
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out[-3000:]
    reader = start_reader(env)
    runs = [materialize(env, home, d.isoformat()) for d in days]
    outputs = [p.communicate(timeout=400)[0] for p in runs]
    reads = stop_reader(reader)
    for day, proc, out in zip(days, runs, outputs, strict=True):
        assert proc.returncode == 0, f"{day}: {out[-3000:]}"
        assert "Conflicting lock" not in out, out[-3000:]
        assert "WarehouseLockedError" not in out, out[-3000:]
        assert "RUN_SUCCESS" in out
    assert reads >= 5
    keys = call_keys(env)
    assert len(keys) == len(set(keys)), "a call was loaded twice"
    assert set(keys) == truth_keys(simulator, env, days)
