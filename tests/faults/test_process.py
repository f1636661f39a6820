"""Process faults: real processes killed or held at known points, never timed by sleeps.

- SIGKILL inside the load's transaction (a `dagster asset materialize` paused by a test-only hook
  right after the changed rows were deleted): every table is as it was; the next run completes.
- SIGKILL while the run is fetching (the simulator holds its third request): same.
- Two runs writing the same file: the second waits for the first's lock, both succeed, every
  call once.
- A second process holding the file: the run waits within WAREHOUSE_LOCK_TIMEOUT_S, then fails
  saying which kind of process holds it and what to do; released in time, the run completes.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, pipeline_env
from tests.faults.conftest import (
    MakePipeline,
    assert_window_exact,
    failure_message,
    materialization,
    snapshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAY = NOW.date() - timedelta(days=2)
WAIT_S = 120  # upper bound on any one wait; the tests finish in seconds when nothing hangs
HOLDER = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


@dataclass
class Proc:
    """A child process whose output lines are read by a thread, so waits have a bound."""

    popen: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                self.kill()
                pytest.fail(f"no {marker!r} within {WAIT_S}s:\n{self.text[-3000:]}")
            if line is None:
                pytest.fail(f"exited before {marker!r}:\n{self.text[-3000:]}")
            self.seen.append(line)
            if marker in line:
                return line

    @property
    def text(self) -> str:
        return "".join(self.seen)

    def finish(self) -> tuple[int, str]:
        code = self.popen.wait(timeout=WAIT_S)
        while (line := self.lines.get(timeout=WAIT_S)) is not None:
            self.seen.append(line)
        self.close()
        return code, self.text

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)  # the group this test started, only
        self.popen.wait(timeout=WAIT_S)
        self.close()

    def close(self) -> None:
        if self.reader is not None:
            self.reader.join(timeout=WAIT_S)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def _cli_env(sim: Simulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    if not home.exists():
        home.mkdir()
        shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(pipeline_env(sim, tmp_path / "warehouse.duckdb"))
    env["DAGSTER_HOME"] = str(home)
    env.update(extra)
    return env


def _start(procs: list[Proc], args: list[str], env: dict[str, str], cwd: Path) -> Proc:
    proc = Proc(
        subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    )
    procs.append(proc)
    return proc


def _materialize(procs: list[Proc], env: dict[str, str]) -> Proc:
    args = [sys.executable, "-m", "tests.faults.hooked_dagster", "asset", "materialize"]
    args += ["-m", "pipelines.definitions", "--select", "*", "--partition", DAY.isoformat()]
    env = {**env, "PYTHONPATH": str(REPO_ROOT)}
    return _start(procs, args, env, Path(env["DAGSTER_HOME"]))


def _gate(tmp_path: Path) -> Path:
    fifo = tmp_path / "gate.fifo"
    os.mkfifo(fifo)
    return fifo


def _open_gate(fifo: Path) -> None:
    with open(fifo, "w") as gate:
        gate.write("go\n")


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.mark.parametrize("first_load", [False, True], ids=["resync", "first-load"])
def test_sigkill_inside_the_load_transaction_changes_no_table_and_the_next_run_completes(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    tmp_path: Path,
    procs: list[Proc],
    first_load: bool,
) -> None:
    pipeline = make_pipeline(simulator)
    if not first_load:
        assert pipeline.run_day(DAY).success
        with duckdb.connect(str(pipeline.warehouse)) as con:
            # The next load has 20 changed rows to delete and insert again, and 20 to insert.
            con.execute(
                "UPDATE calls SET duration = duration + 7 WHERE call_key IN "
                "(SELECT call_key FROM calls ORDER BY call_key LIMIT 20)"
            )
            con.execute(
                "DELETE FROM calls WHERE call_key IN "
                "(SELECT call_key FROM calls ORDER BY call_key DESC LIMIT 20)"
            )
    before = snapshot(pipeline.warehouse)
    fifo = _gate(tmp_path)
    env = _cli_env(simulator, tmp_path, FAULTS_PAUSE_AT="calls_insert", FAULTS_PAUSE_FIFO=str(fifo))
    run = _materialize(procs, env)
    run.wait_for("PAUSED-IN-LOAD")  # changed rows deleted, nothing inserted yet
    run.kill()
    after = snapshot(pipeline.warehouse)
    if first_load:
        # The schema was created and committed before the load began: empty tables, no rows.
        assert before is None
        assert after is not None
        assert all(rows == [] for name, rows in after.items() if name != "schema_version")
    else:
        assert after == before
    result = pipeline.run_day(DAY)
    assert result.success
    if not first_load:
        meta = materialization(result)
        assert (meta["inserted"], meta["updated"]) == (20, 20)
    assert assert_window_exact(pipeline, DAY) > 0


class _HoldingSimulator(Simulator):
    """Holds its Nth RecentCalls request until released, and says when it arrives."""

    def __init__(self, hold_at: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_at = hold_at
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._seen = 0
        self._seen_lock = threading.Lock()

    def handle(self, path: str, auth: str | None) -> Any:
        with self._seen_lock:
            self._seen += 1
            hold = self._seen == self.hold_at
        if hold:
            self.arrived.set()
            self.release.wait(WAIT_S)
        return super().handle(path, auth)


def test_sigkill_while_fetching_changes_no_table_and_the_next_run_completes(
    make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    with _HoldingSimulator(hold_at=4, seed=11, calls_per_day=1600, now=NOW) as sim:
        pipeline = make_pipeline(sim)
        assert pipeline.run_day(DAY - timedelta(days=1)).success  # requests 1..3 (4 pages)
        with duckdb.connect(str(pipeline.warehouse)) as con:
            con.execute("DELETE FROM calls")  # so a commit of the killed run would show
        before = snapshot(pipeline.warehouse)
        sim.hold_at += 3  # the killed run's third page: past the first one, mid-window
        run = _materialize(procs, _cli_env(sim, tmp_path))
        assert sim.arrived.wait(WAIT_S), run.text
        run.kill()
        sim.release.set()
        assert snapshot(pipeline.warehouse) == before
        assert pipeline.run_day(DAY).success
        assert assert_window_exact(pipeline, DAY) > 1500


def test_two_runs_writing_the_same_file_take_turns_and_load_every_call_once(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    pipeline = make_pipeline(simulator, WAREHOUSE_LOCK_TIMEOUT_S="1")
    assert pipeline.run_day(DAY - timedelta(days=1)).success  # the file exists, with a day
    fifo = _gate(tmp_path)
    first = _materialize(
        procs,
        _cli_env(simulator, tmp_path, FAULTS_PAUSE_AT="calls_insert", FAULTS_PAUSE_FIFO=str(fifo)),
    )
    pid = int(first.wait_for("PAUSED-IN-LOAD").split("pid=")[1])
    # A run with a short lock timeout fails, naming a Dagster process as the holder.
    refused = pipeline.run_day(DAY)
    assert not refused.success
    message = failure_message(refused)
    assert f"a Dagster process (PID {pid})" in message, message
    assert f"partition {DAY.isoformat()}" in message
    assert "WAREHOUSE_LOCK_TIMEOUT_S" in message
    # A run of the same Dagster instance waits in the duckdb_warehouse pool...
    same_instance = _materialize(procs, _cli_env(simulator, tmp_path))
    same_instance.wait_for("blocked by limit for pool duckdb_warehouse")
    # ...and a run of another instance (another DAGSTER_HOME) waits on the file's lock.
    other_home = tmp_path / "other"
    other_home.mkdir()
    other_instance = _materialize(
        procs,
        _cli_env(simulator, other_home, FAULTS_SIGNAL_LOCK="1", WAREHOUSE_LOCK_TIMEOUT_S="120")
        | {"WAREHOUSE_PATH": str(pipeline.warehouse)},
    )
    other_instance.wait_for("WAITING-FOR-LOCK")
    _open_gate(fifo)
    for proc in (first, same_instance, other_instance):
        code, out = proc.finish()
        assert code == 0, out[-3000:]
        assert "RUN_SUCCESS" in out
        assert "WarehouseLockedError" not in out
    assert assert_window_exact(pipeline, DAY) > 0
    keys = _rows(pipeline.warehouse, "SELECT count(*), count(DISTINCT call_key) FROM calls")
    assert keys[0][0] == keys[0][1]


def _hold(procs: list[Proc], path: Path) -> Proc:
    holder = _start(procs, [sys.executable, "-c", HOLDER, str(path)], dict(os.environ), path.parent)
    holder.wait_for("ready")
    return holder


def _release(holder: Proc) -> None:
    assert holder.popen.stdin is not None
    holder.popen.stdin.close()
    code, out = holder.finish()
    assert code == 0, out


def test_a_process_holding_the_file_fails_the_run_within_the_bound_naming_it(
    simulator: Simulator, make_pipeline: MakePipeline, procs: list[Proc]
) -> None:
    pipeline = make_pipeline(simulator, WAREHOUSE_LOCK_TIMEOUT_S="1")
    assert pipeline.run_day(DAY - timedelta(days=1)).success
    before = snapshot(pipeline.warehouse)
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
    assert snapshot(pipeline.warehouse) == before


def test_a_holder_that_lets_go_within_the_bound_only_delays_the_run(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY - timedelta(days=1)).success
    holder = _hold(procs, pipeline.warehouse)
    run = _materialize(
        procs,
        _cli_env(simulator, tmp_path, FAULTS_SIGNAL_LOCK="1", WAREHOUSE_LOCK_TIMEOUT_S="120"),
    )
    run.wait_for("WAITING-FOR-LOCK")
    _release(holder)
    code, out = run.finish()
    assert code == 0, out[-3000:]
    assert assert_window_exact(pipeline, DAY) > 0
