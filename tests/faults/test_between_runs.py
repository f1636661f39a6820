"""Between runs: a killed run, an open notebook and DAGSTER_HOME, on the killed run's own instance.

What a user meets after a failure is the next run on the same DAGSTER_HOME and the same
warehouse, so every test here continues there, through the `dagster` CLI and `dagster-daemon` in
subprocesses:
- SIGKILL where a run holds the warehouse (its load, a model's rebuild): a CLI run of another day
  and a daemon-launched run of the killed day each send their first request long before a stale
  lock's timeout and load every call once; the killed run is marked failed by the first tick of
  the `dead_runs` sensor (in both lanes: in the lake, the killed run's window lock dies with its
  catalog connection);
- a reader holding the file across a queued run: the step fails naming the holder, is retried
  after a backoff, and completes once the reader lets go; models rebuilt (the file only: a lake's
  readers never block a writer);
- DAGSTER_HOME in one folder, the process started in another: no file appears outside it, the
  warehouse (the file's folder, or the lake's data folder) and the repository's git-ignored
  paths.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import DagsterEventType

from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import BIN, MATERIALIZE, submit_backfill
from tests.faults.conftest import MakePipeline, assert_window_exact
from tests.faults.processes import (
    WAIT_S,
    Proc,
    WatchedSimulator,
    cli_env,
    gate,
    materialize,
    start,
)

pytestmark = pytest.mark.process

DAY = NOW.date() - timedelta(days=2)

# A later run is not held back: its first RecentCalls request comes well before the lock
# timeout a stale lock would make it wait (LOCK_TIMEOUT_S, set for these runs), so the bound
# separates "held back" from "a loaded machine" by a factor of five, not by seconds.
FIRST_REQUEST_S = 120
LOCK_TIMEOUT_S = "600"
READ_HOLDER = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "con.execute('SELECT count(*) FROM calls').fetchall()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def _daemon(procs: list[Proc], env: dict[str, str], cwd: Path) -> Proc:
    return start(
        procs, [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"], env, cwd
    )


def _poll(home: Path, done: Callable[[dg.DagsterInstance], bool], what: str, daemon: Proc) -> None:
    """Read the instance until `done` holds; fails after WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while not done(instance):
            if time.monotonic() > deadline:
                runs = [(r.run_id[:8], r.status.value, r.tags) for r in instance.get_runs()]
                log = daemon.drain()[-4000:]
                pytest.fail(f"{what}: not within {WAIT_S} s; runs: {runs}\ndaemon:\n{log}")
            time.sleep(0.5)  # polling a condition with a deadline, not synchronizing on time


def _syncs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The runs that sync (the freshness sensor launches runs of its own check)."""
    runs = instance.get_runs()
    return [r for r in runs if r.tags.get("dagster/sensor_name") != "calls_freshness"]


def _first_sync_s(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """Seconds from the run's creation to its `syncing ...` line (right before its first
    request), or None if it has not got there."""
    record = instance.get_run_record_by_id(run_id)
    assert record is not None
    for entry in instance.all_logs(run_id):
        if entry.user_message.startswith("syncing "):
            return entry.timestamp - record.create_timestamp.timestamp()
    return None


def _ticks(instance: dg.DagsterInstance, sensor: str) -> list[str]:
    """What each tick of `sensor` said (its skip reason), oldest first."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    state = next(s for s in states if s.instigator_name == sensor)
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    return [str(t.skip_reason) for t in sorted(ticks, key=lambda t: t.timestamp)]


KILL_AT = {
    "load": {"FAULTS_PAUSE_AT": "calls_insert"},  # inside the load's transaction
    "models": {"FAULTS_PAUSE_AT": "answer_rates_daily"},  # rebuilding a model
}


# The points where a killed run holds the warehouse: its load (the file's lock; the lake's
# window lock, warehouse/lake.py, which must die with its catalog connection) and a model's
# rebuild (the file's lock). On the file both runs die on one instance, one after the other, each
# on a day of its own: the later runs must be held back by neither. A run killed while paging
# holds neither (tests/faults/test_process.py kills one there and the next run completes); its
# run slot is freed by the same reaper.
POINTS = {"file": ["load", "models"], "lake": ["load"]}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("lane", list(POINTS), indirect=True)
def test_a_killed_run_holds_back_no_later_run_on_its_own_instance(
    make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc], lane: object
) -> None:
    """A run's process SIGKILLed: only a real process can die without ending its run, leave its
    lock to the kernel and its run STARTED in the instance; the daemon (a process) must mark it
    failed and launch the queued run."""
    points = POINTS["lake" if lane else "file"]
    killed_days = [DAY - timedelta(days=n) for n in range(len(points))]
    with WatchedSimulator(seed=11, calls_per_day=1600, now=NOW) as sim:
        pipeline = make_pipeline(sim)  # the oracle's view of the same warehouse
        env = cli_env(pipeline, tmp_path, WAREHOUSE_LOCK_TIMEOUT_S=LOCK_TIMEOUT_S)
        home = Path(env["DAGSTER_HOME"])
        for point, day in zip(points, killed_days, strict=True):
            (tmp_path / point).mkdir()
            hooks = {**KILL_AT[point], "FAULTS_PAUSE_FIFO": str(gate(tmp_path / point))}
            killed = materialize(procs, env | hooks, day)
            killed.wait_for("PAUSED-IN-LOAD")
            killed.kill()  # the whole process group, as an OOM kill or a reboot would

        # The CLI, another day: nothing waits for the dead runs.
        sim.forget_requests()
        other_day = killed_days[-1] - timedelta(days=1)
        other = materialize(procs, env, other_day)
        waited = sim.wait_for_request(other_day, FIRST_REQUEST_S)
        code, out = other.finish()
        assert code == 0, out[-3000:]
        assert assert_window_exact(pipeline, other_day) > 1500

        # The daemon, the killed days: queued runs start at once; the dead runs are marked
        # failed (a CLI run has no origin for run retries to launch again; a daemon-launched
        # one would be).
        daemon = _daemon(procs, env, tmp_path)
        submit_backfill(env, tmp_path, killed_days[-1], killed_days[0])

        def settled(instance: dg.DagsterInstance) -> bool:
            runs = _syncs(instance)
            backfill = [r for r in runs if r.tags.get("dagster/backfill")]
            return len(backfill) == len(points) and all(r.is_finished for r in runs)

        _poll(home, settled, "the backfill runs finish and the dead runs are marked failed", daemon)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = _syncs(instance)
            dead = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
            assert len(dead) == len(points), [(r.run_id, r.status) for r in runs]
            for run in dead:
                failure = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
                assert "is gone without ending the run" in failure[-1].message
            # marked failed by the reaper's first tick: a watcher there is enough, however
            # loaded the machine
            first_tick = _ticks(instance, "dead_runs")[0]
            assert all(run.run_id in first_tick for run in dead), first_tick
            later = [r for r in runs if r.run_id not in {d.run_id for d in dead}]
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in later)
            delays = [
                _first_sync_s(instance, r.run_id) for r in later if r.tags.get("dagster/backfill")
            ]
        assert len(delays) == len(points), runs
        assert all(d is not None and d < FIRST_REQUEST_S for d in delays), delays
        for day in killed_days:
            assert assert_window_exact(pipeline, day) > 1500
        print(f"{points}: CLI run's first request after {waited:.1f} s; daemon runs {delays}")


@pytest.mark.file_only  # a reader holding the DuckDB file; a lake's readers hold no lock
def test_a_reader_holding_the_file_delays_a_queued_run_which_retries_and_completes(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """Another process holds the file (DuckDB's lock is per process); the daemon launches the
    queued run, whose step is retried by Dagster's run worker after its backoff."""
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY - timedelta(days=1)).success  # the file exists, with a day
    env = cli_env(
        pipeline,
        tmp_path,
        WAREHOUSE_LOCK_TIMEOUT_S="1",
        SYNC_RETRIES="6",
        SYNC_RETRY_DELAY_S="1",
    )
    home = Path(env["DAGSTER_HOME"])
    reader = start(
        procs, [sys.executable, "-c", READ_HOLDER, str(pipeline.warehouse)], env, tmp_path
    )
    reader.wait_for("ready")  # a notebook left open, read-only
    # Queued first: the backfill command creates the instance's storage, which a daemon
    # starting at the same moment on a fresh DAGSTER_HOME would race it to create.
    submit_backfill(env, tmp_path, DAY, DAY)
    daemon = _daemon(procs, env, tmp_path)
    holder = f"a Python process (PID {reader.popen.pid}, not a Dagster run)"

    def up_for_retry(instance: dg.DagsterInstance) -> bool:
        return any(
            holder in (e.dagster_event.step_retry_data.error.to_string() if e.dagster_event else "")
            for r in instance.get_runs()
            for e in instance.all_logs(r.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
        )

    _poll(home, up_for_retry, "the step fails naming the reader and is up for retry", daemon)
    assert reader.popen.stdin is not None
    reader.popen.stdin.close()  # the notebook is closed
    assert reader.finish()[0] == 0

    def finished(instance: dg.DagsterInstance) -> bool:
        runs = _syncs(instance)
        return bool(runs) and all(r.is_finished for r in runs)

    _poll(home, finished, "the run completes once the reader let go", daemon)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = _syncs(instance)
        assert run.status == dg.DagsterRunStatus.SUCCESS
    assert assert_window_exact(pipeline, DAY) > 0
    with pipeline.connect(read_only=True) as con:
        ((calls, attempts),) = con.execute(
            "SELECT (SELECT count(*) FROM calls WHERE attempted_at::DATE = $d), "
            "(SELECT sum(attempts) FROM answer_rates_daily WHERE day = $d)",
            {"d": DAY},
        ).fetchall()
    assert attempts == calls > 0  # the day's models were rebuilt after the retried load


def _untracked() -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


def test_every_instance_file_lives_under_dagster_home(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """The `dagster` CLI started in another folder: where a process writes its instance files
    depends on its working directory and DAGSTER_HOME, which an in-process run does not have."""
    pipeline = make_pipeline(simulator)
    env = cli_env(pipeline, tmp_path)  # DAGSTER_HOME and the warehouse under tmp_path
    home = Path(env["DAGSTER_HOME"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = _untracked()
    run = start(
        procs, [str(BIN / "dagster"), *MATERIALIZE, "--partition", DAY.isoformat()], env, elsewhere
    )
    code, out = run.finish()
    assert code == 0, out[-3000:]
    assert list(elsewhere.iterdir()) == []
    if pipeline.lake:  # the lake's data folder, and no DuckDB file
        warehouse = {Path(pipeline.lake.data_path).name}
    else:
        warehouse = {"warehouse.duckdb", "warehouse.duckdb.wal"}
    assert {p.name for p in tmp_path.iterdir()} <= {"dagster_home", "elsewhere", *warehouse}
    assert pipeline.written()
    assert _untracked() == before  # nothing new in the repository outside its ignored paths
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (recorded,) = _syncs(instance)
        assert recorded.status == dg.DagsterRunStatus.SUCCESS
    written = {p.relative_to(home).parts[0] for p in home.rglob("*") if p.is_file()}
    assert "dagster.yaml" in written
    assert len(written) > 1  # run storage, event logs, compute logs: all here
