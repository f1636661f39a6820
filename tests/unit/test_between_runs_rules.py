"""The rules behind operation between runs: retry delays, the freshness deadline, dead processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipelines.dead_runs import _started_at
from pipelines.freshness import deadline_minutes
from pipelines.retries import MAX_DELAY_S, retry_delay
from pipelines.settings import load_settings


def test_retry_delays_double_from_the_first_and_are_capped() -> None:
    assert [retry_delay(n, 60.0) for n in range(5)] == [60.0, 120.0, 240.0, 480.0, MAX_DELAY_S]
    assert retry_delay(1000, 60.0) == MAX_DELAY_S
    assert retry_delay(3, 0.0) == 0.0


@pytest.mark.parametrize(
    ("settle", "margin", "deadline"),
    [("60", "", 180), ("90", "45", 135), ("1380", "600", 23 * 60 + 59)],
)
def test_the_freshness_deadline_is_settle_plus_margin_within_the_day(
    settle: str, margin: str, deadline: int
) -> None:
    env = {"SYNC_SETTLE_MINUTES": settle, "SYNC_FRESHNESS_MARGIN_MINUTES": margin}
    assert deadline_minutes(load_settings(env)) == deadline


def test_a_live_process_has_a_start_time_and_a_gone_one_has_none() -> None:
    started = _started_at(os.getpid())
    assert started is not None
    assert started <= time.time()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped: the PID names no process
    assert _started_at(child.pid) is None


def test_an_exited_child_not_yet_reaped_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # a zombie until waited for: wait for its exit without reaping it (WNOWAIT)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        assert _started_at(child.pid) is None
    finally:
        child.wait()


def test_the_reaper_marks_failed_a_started_run_whose_process_is_gone_and_no_other() -> None:
    """`reap` on a real (SQLite) instance: a STARTED run whose logged PID has exited is marked
    failed, saying why; a STARTED run whose process lives, and a run that logged no PID yet,
    are left alone. (The daemon's tick calling it: tests/faults/test_between_runs.py.)"""
    import dagster as dg
    from dagster._core.events import EngineEventData

    from pipelines.dead_runs import reap

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with dg.DagsterInstance.local_temp() as instance:
        runs = {}
        for name, pid in (("dead", gone.pid), ("alive", os.getpid()), ("silent", None)):
            run = instance.add_run(
                dg.DagsterRun(job_name=f"job_{name}", status=dg.DagsterRunStatus.STARTED)
            )
            if pid is not None:
                data = EngineEventData(metadata={"pid": dg.MetadataValue.int(pid)})
                instance.report_engine_event("the run's process", run, data)
            runs[name] = run.run_id
        reaped = reap(instance)
        status = {name: instance.get_run_by_id(rid).status for name, rid in runs.items()}
    assert [line.split(" ")[0] for line in reaped] == [runs["dead"]]
    assert status == {
        "dead": dg.DagsterRunStatus.FAILURE,
        "alive": dg.DagsterRunStatus.STARTED,
        "silent": dg.DagsterRunStatus.STARTED,
    }


def test_runs_are_judged_by_pid_only_on_sqlite_run_storage() -> None:
    """The reaper judges the runs of a SQLite instance (every run ran on this machine), not those
    of another storage (here in memory; PostgreSQL, shared by machines, in production)."""
    import dagster as dg

    from pipelines.dead_runs import judges_runs

    with dg.DagsterInstance.local_temp() as on_sqlite:
        assert judges_runs(on_sqlite)
    with dg.DagsterInstance.ephemeral() as in_memory:
        assert not judges_runs(in_memory)
