"""The real `dagster` CLI in subprocesses: a partition, and five partitions as concurrent runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.jambonz.records import record_identity
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, pipeline_env

pytestmark = pytest.mark.e2e

DAGSTER = str(Path(sys.executable).parent / "dagster")

READER = """
import sys, time
from warehouse.load import Warehouse
reads = 0
for _ in range(int(sys.argv[2])):
    with Warehouse(sys.argv[1], read_only=True, lock_timeout_s=120) as wh:
        wh.con.execute("SELECT count(*) FROM calls").fetchall()
    reads += 1
print("reads", reads)
"""


def _env(sim: Simulator, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The repository's own instance configuration (pools, run queue), storage under tmp_path.
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(pipeline_env(sim, tmp_path / "warehouse.duckdb"))
    env["DAGSTER_HOME"] = str(home)
    return env


def _materialize(env: dict[str, str], cwd: Path, partition: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "pipelines.definitions",
            "--select",
            "*",
            "--partition",
            partition,
        ],
        env=env,
        cwd=cwd / "dagster_home",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _keys(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT call_key FROM calls").fetchall()]


def test_cli_materializes_a_partition(simulator: Simulator, tmp_path: Path) -> None:
    env = _env(simulator, tmp_path)
    day = NOW.date() - timedelta(days=2)
    proc = _materialize(env, tmp_path, day.isoformat())
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert "RUN_SUCCESS" in out
    w = day_window(day, "UTC")
    truth = {
        record_identity(r) for r in simulator.calls(env["JAMBONZ_ACCOUNT_SID"], w.start, w.end)
    }
    assert set(_keys(tmp_path / "warehouse.duckdb")) == truth
    assert env["JAMBONZ_API_KEY"] not in out


def test_five_partitions_as_concurrent_runs_with_a_reader(
    simulator: Simulator, tmp_path: Path
) -> None:
    env = _env(simulator, tmp_path)
    days = [NOW.date() - timedelta(days=n) for n in range(2, 7)]
    # The file exists before the runs start so the reader can open it from its first read.
    first = _materialize(env, tmp_path, days[0].isoformat())
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out[-3000:]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path / "warehouse.duckdb"), "40"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runs = [_materialize(env, tmp_path, d.isoformat()) for d in days]
    outputs = [p.communicate(timeout=400)[0] for p in runs]
    reader_out, _ = reader.communicate(timeout=400)
    for day, proc, out in zip(days, runs, outputs, strict=True):
        assert proc.returncode == 0, f"{day}: {out[-3000:]}"
        assert "Conflicting lock" not in out, out[-3000:]
        assert "WarehouseLockedError" not in out, out[-3000:]
        assert "RUN_SUCCESS" in out
    assert reader.returncode == 0, reader_out
    assert "reads 40" in reader_out
    keys = _keys(tmp_path / "warehouse.duckdb")
    assert len(keys) == len(set(keys)), "a call was loaded twice"
    truth: set[str] = set()
    for day in days:
        w = day_window(day, "UTC")
        truth |= {
            record_identity(r) for r in simulator.calls(env["JAMBONZ_ACCOUNT_SID"], w.start, w.end)
        }
    assert set(keys) == truth
