"""A 30-day backfill the way users launch one: `dagster job backfill` picked up by the daemon.

The daemon launches one run per partition (at most 4 at once, dagster.yaml); every warehouse step
waits for the `duckdb_warehouse` pool, and a separate process reads the DuckDB file meanwhile. The
backfill must finish with every run successful, no lock error anywhere, and every call once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.jambonz.records import record_identity
from pipelines.jambonz.simulator import ACCOUNT_SID, Simulator
from pipelines.partitions import day_window
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, pipeline_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
DAYS = [NOW.date() - timedelta(days=n) for n in range(30, 0, -1)]
READER = """
import sys
from warehouse.load import Warehouse
n = 0
while n < int(sys.argv[2]):
    with Warehouse(sys.argv[1], read_only=True, lock_timeout_s=300) as wh:
        wh.con.execute("SELECT count(*) FROM calls").fetchall()
    n += 1
print("reads", n)
"""


@pytest.fixture
def daemon_env(tmp_path: Path) -> Iterator[tuple[Simulator, dict[str, str], Path]]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with Simulator(seed=11, calls_per_day=150, now=NOW, retention_days=40) as sim:
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(pipeline_env(sim, tmp_path / "warehouse.duckdb"))
        env["PARTITIONS_START_DATE"] = DAYS[0].isoformat()
        env["DAGSTER_HOME"] = str(home)
        yield sim, env, home


def _wait_for_backfill(home: Path, expected_runs: int, timeout_s: float) -> list[dg.DagsterRun]:
    """Poll the instance until every run of the backfill reached a final state (bounded)."""
    deadline = time.monotonic() + timeout_s
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while True:
            runs = instance.get_runs()
            done = [r for r in runs if r.is_finished]
            if len(runs) >= expected_runs and len(done) == len(runs):
                return list(runs)
            if time.monotonic() > deadline:
                states = sorted(str(r.status) for r in runs)
                raise AssertionError(f"backfill unfinished after {timeout_s}s: {states}")
            time.sleep(1.0)  # polling a condition with a deadline, not synchronizing on time


@pytest.mark.timeout(900)
def test_a_30_day_backfill_through_the_daemon_has_no_lock_error(
    daemon_env: tuple[Simulator, dict[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, env, home = daemon_env
    monkeypatch.chdir(home)  # dagster.yaml's storage paths are relative to where Dagster starts
    # The warehouse file exists from the first partition on, so the reader can start at once.
    first = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "pipelines.definitions",
            "--select",
            "*",
            "--partition",
            DAYS[0].isoformat(),
        ],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, env["WAREHOUSE_PATH"], "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        submit = subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "backfill",
                "-m",
                "pipelines.definitions",
                "-j",
                "daily_sync",
                "--from",
                DAYS[0].isoformat(),
                "--to",
                DAYS[-1].isoformat(),
                "--noprompt",
            ],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
        runs = _wait_for_backfill(home, expected_runs=1 + len(DAYS), timeout_s=900)
        reader_out, _ = reader.communicate(timeout=300)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        log.close()
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, [(r.tags.get("dagster/partition"), r.status) for r in failed]
    backfill_runs = [r for r in runs if r.tags.get("dagster/backfill")]
    assert sorted(r.tags["dagster/partition"] for r in backfill_runs) == [
        d.isoformat() for d in DAYS
    ]
    assert "reads 60" in reader_out
    assert "Conflicting lock" not in (tmp_path / "daemon.log").read_text()
    with duckdb.connect(env["WAREHOUSE_PATH"], read_only=True) as con:
        keys = [k for (k,) in con.execute("SELECT call_key FROM calls").fetchall()]
    assert len(keys) == len(set(keys))
    truth = set()
    for day in DAYS:
        w = day_window(day, "UTC")
        truth |= {record_identity(r) for r in sim.calls(ACCOUNT_SID, w.start, w.end)}
    assert set(keys) == truth
