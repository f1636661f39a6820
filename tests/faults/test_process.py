"""Process faults: real processes killed or held at known points, never timed by sleeps.

- SIGKILL inside the load's transaction (a `dagster asset materialize` paused by a test-only hook
  after the changed rows were deleted and the calls inserted, before their payloads): every
  table is as it was; the next run completes.
- SIGKILL while the run is fetching (the simulator holds its third request): same.
Both in each lane; in the lake the killed run's transaction and window lock die with its
catalog connection. On the file only (file_only: its lock):
- Two runs writing the same file: the second waits for the first's lock, both succeed, every
  call once.
- A second process holding the file: the run waits within WAREHOUSE_LOCK_TIMEOUT_S, then fails
  saying which kind of process holds it and what to do; released in time, the run completes.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.jambonz.simulator import Simulator
from tests.conftest import NOW
from tests.e2e.conftest import tables
from tests.faults.conftest import (
    MakePipeline,
    assert_window_exact,
    failure_message,
    materialization,
)
from tests.faults.processes import (
    HOLDER,
    WAIT_S,
    Proc,
    WatchedSimulator,
    cli_env,
    cpu_seconds,
    gate,
    materialize,
    open_gate,
    start,
)

pytestmark = pytest.mark.process

DAY = NOW.date() - timedelta(days=2)


def _materialize(procs: list[Proc], env: dict[str, str], day: date = DAY) -> Proc:
    return materialize(procs, env, day)


@pytest.mark.parametrize("first_load", [False, True], ids=["resync", "first-load"])
def test_sigkill_inside_the_load_transaction_changes_no_table_and_the_next_run_completes(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    tmp_path: Path,
    procs: list[Proc],
    first_load: bool,
) -> None:
    """SIGKILL of a run's process inside its load transaction: only a killed process shows that
    the kernel's end of it leaves no table changed."""
    pipeline = make_pipeline(simulator)
    if not first_load:
        assert pipeline.run_day(DAY).success
        with pipeline.connect() as con:
            # The next load has 20 changed rows to delete and insert again, and 20 to insert.
            con.execute(
                "UPDATE calls SET duration = duration + 7 WHERE call_key IN "
                "(SELECT call_key FROM calls ORDER BY call_key LIMIT 20)"
            )
            con.execute(
                "DELETE FROM calls WHERE call_key IN "
                "(SELECT call_key FROM calls ORDER BY call_key DESC LIMIT 20)"
            )
    before = pipeline.snapshot()
    fifo = gate(tmp_path)
    # paused with the changed rows deleted and the calls inserted, their payloads not yet: a
    # commit anywhere before that point would leave a changed table behind
    pause = {"FAULTS_PAUSE_AT": "calls_raw_insert", "FAULTS_PAUSE_FIFO": str(fifo)}
    run = _materialize(procs, cli_env(pipeline, tmp_path, **pause))
    run.wait_for("PAUSED-IN-LOAD")
    run.kill()
    after = pipeline.snapshot()
    if first_load:
        # The schema was created and committed before the load began: empty tables, no rows
        # (in the lake, where a schema alone is not `written`, no snapshot at all).
        assert before is None
        with pipeline.connect(read_only=True) as con:
            assert "calls" in tables(con)
        assert all(rows == [] for name, rows in (after or {}).items() if name != "schema_version")
    else:
        assert after == before
    result = pipeline.run_day(DAY)
    assert result.success
    if not first_load:
        meta = materialization(result)
        assert (meta["inserted"], meta["updated"]) == (20, 20)
    assert assert_window_exact(pipeline, DAY) > 0


def test_sigkill_while_fetching_changes_no_table_and_the_next_run_completes(
    make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """SIGKILL of a run's process while it pages: nothing written, the next run whole."""
    with WatchedSimulator(hold_at=4, seed=11, calls_per_day=1600, now=NOW) as sim:
        pipeline = make_pipeline(sim)
        assert pipeline.run_day(DAY - timedelta(days=1)).success  # requests 1..3 (4 pages)
        with pipeline.connect() as con:
            con.execute("DELETE FROM calls")  # so a commit of the killed run would show
        before = pipeline.snapshot()
        sim.hold_at += 3  # the killed run's third page: past the first one, mid-window
        run = _materialize(procs, cli_env(pipeline, tmp_path))
        assert sim.arrived.wait(WAIT_S), run.text
        run.kill()
        sim.release.set()
        assert pipeline.snapshot() == before
        assert pipeline.run_day(DAY).success
        assert assert_window_exact(pipeline, DAY) > 1500


@pytest.mark.file_only  # the file's lock; two runs of one day in a lake: tests/e2e/test_lake.py
def test_two_runs_writing_the_same_file_take_turns_and_load_every_call_once(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """Two run processes on one file: DuckDB's lock is per process, so only two processes take
    turns on it."""
    pipeline = make_pipeline(simulator, WAREHOUSE_LOCK_TIMEOUT_S="1")
    assert pipeline.run_day(DAY - timedelta(days=1)).success  # the file exists, with a day
    fifo = gate(tmp_path)
    first = _materialize(
        procs,
        cli_env(pipeline, tmp_path, FAULTS_PAUSE_AT="calls_insert", FAULTS_PAUSE_FIFO=str(fifo)),
    )
    pid = int(first.wait_for("PAUSED-IN-LOAD").split("pid=")[1])
    # A run with a short lock timeout fails, naming a Dagster process as the holder.
    refused = pipeline.run_day(DAY)
    assert not refused.success
    message = failure_message(refused)
    assert f"a Dagster process (PID {pid})" in message, message
    assert f"partition {DAY.isoformat()}" in message
    assert "WAREHOUSE_LOCK_TIMEOUT_S" in message
    # A run of the same Dagster instance waits on the file's lock, sleeping, not spinning...
    same_instance = _materialize(
        procs, cli_env(pipeline, tmp_path, FAULTS_SIGNAL_LOCK="1", WAREHOUSE_LOCK_TIMEOUT_S="120")
    )
    same_instance.wait_for("WAITING-FOR-LOCK")
    cpu, wall = cpu_seconds(same_instance.popen.pid), time.monotonic()
    for _ in range(6):  # six more tries at the lock: a few seconds of waiting, its own clock
        same_instance.wait_for("WAITING-FOR-LOCK")
    used = (cpu_seconds(same_instance.popen.pid) - cpu) / (time.monotonic() - wall)
    assert used < 0.05, f"the waiting run used {used:.0%} of a core"
    print(f"a run waiting on the lock used {used:.2%} of a core")
    # ...and so does a run of another instance (another DAGSTER_HOME).
    other_home = tmp_path / "other"
    other_home.mkdir()
    other_instance = _materialize(
        procs, cli_env(pipeline, other_home, FAULTS_SIGNAL_LOCK="1", WAREHOUSE_LOCK_TIMEOUT_S="120")
    )
    other_instance.wait_for("WAITING-FOR-LOCK")
    open_gate(fifo)
    for proc in (first, same_instance, other_instance):
        code, out = proc.finish()
        assert code == 0, out[-3000:]
        assert "RUN_SUCCESS" in out
        assert "WarehouseLockedError" not in out
    assert assert_window_exact(pipeline, DAY) > 0
    with pipeline.connect(read_only=True) as con:
        keys = con.execute("SELECT count(*), count(DISTINCT call_key) FROM calls").fetchall()
    assert keys[0][0] == keys[0][1]


def _hold(procs: list[Proc], path: Path) -> Proc:
    holder = start(procs, [sys.executable, "-c", HOLDER, str(path)], dict(os.environ), path.parent)
    holder.wait_for("ready")
    return holder


def _release(holder: Proc) -> None:
    assert holder.popen.stdin is not None
    holder.popen.stdin.close()
    code, out = holder.finish()
    assert code == 0, out


@pytest.mark.file_only  # a lake has no file to hold: its readers never block a writer
def test_a_process_holding_the_file_fails_the_run_within_the_bound_naming_it(
    simulator: Simulator, make_pipeline: MakePipeline, procs: list[Proc]
) -> None:
    """Another process holds the file: the run waits within the bound and then names the holder
    (its kind and PID), which only another process can be."""
    pipeline = make_pipeline(simulator, WAREHOUSE_LOCK_TIMEOUT_S="1")
    assert pipeline.run_day(DAY - timedelta(days=1)).success
    before = pipeline.snapshot()
    holder = _hold(procs, pipeline.warehouse)
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result).strip()
    assert "\n" not in message
    for text in (
        str(pipeline.warehouse),
        f"a Python process (PID {holder.popen.pid}, not a Dagster run)",
        "close its DuckDB connection",
        f"partition {DAY.isoformat()}",
        "waited 1 s",
    ):
        assert text in message, message
    _release(holder)
    assert pipeline.snapshot() == before


@pytest.mark.file_only  # the file's lock, as above
def test_a_holder_that_lets_go_within_the_bound_only_delays_the_run(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """A holder process that lets go in time: the run process waits for the lock and loads."""
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY - timedelta(days=1)).success
    holder = _hold(procs, pipeline.warehouse)
    run = _materialize(
        procs, cli_env(pipeline, tmp_path, FAULTS_SIGNAL_LOCK="1", WAREHOUSE_LOCK_TIMEOUT_S="120")
    )
    run.wait_for("WAITING-FOR-LOCK")
    _release(holder)
    code, out = run.finish()
    assert code == 0, out[-3000:]
    assert assert_window_exact(pipeline, DAY) > 0
