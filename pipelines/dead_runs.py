"""Runs whose process is gone are marked failed, so they hold nothing and are tried again.

A run killed by SIGKILL (an OOM kill, a reboot, a deploy) never writes its own end: Dagster keeps
it STARTED forever. A STARTED run counts against the run queue's `max_concurrent_runs`, and nothing
retries it, so a stopped nightly sync would stay stopped. The default run launcher cannot tell a
dead run worker from a live one (run monitoring needs a launcher with health checks, such as the
Kubernetes or Docker ones), so this sensor does it for runs of this machine: every in-progress run
logged the PID of the process executing it; when that process is gone (or the PID now belongs to a
process started after the run's), the run is reported failed. Dagster's run retries (dagster.yaml)
then launch it again, and the run-failure alert says so.

It only judges runs it can see from here: with SQLite run storage every run of the instance ran on
this machine. With shared storage (dagster-postgres, several machines) a PID means nothing across
machines, so the sensor leaves runs alone and run monitoring of a launcher with health checks does
this work. It never touches a run whose process is alive, nor one that logged no PID yet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

# Private, as dagster 1.13 exports no public equivalent:
# - JobFailureData and RunFailureReason: the only way to give a run failed from outside its process
#   a reason (`instance.report_run_failed`'s job_failure_data), which Dagster records in the run's
#   `dagster/failure_reason` tag and the UI shows: UNEXPECTED_TERMINATION, not a step's failure.
# - SqliteRunStorage: the one storage whose runs all ran on this machine (see the docstring); the
#   public `dagster_postgres.PostgresRunStorage` could only say "not PostgreSQL", which would let
#   the sensor judge the runs of another shared storage (MySQL, Dagster+) by PIDs of this machine.
# SqliteRunStorage comes from the package that re-exports it, not the module that defines it.
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.runs import SqliteRunStorage

INTERVAL_S = 15  # a dead run is marked failed within ~INTERVAL_S plus the daemon's loop
_IN_PROGRESS = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _started_at(pid: int) -> float | None:
    """When the process `pid` started (epoch seconds), None when there is no such live process.

    Linux: /proc/<pid>/stat (a zombie counts as gone). Elsewhere: alive or not, start unknown.
    """
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    if fields[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The PID the run's newest engine event names, and when that event was logged."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False, limit=50
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            try:
                return int(str(pid.value)), record.event_log_entry.timestamp
            except ValueError:
                continue
    return None


def judges_runs(instance: dg.DagsterInstance) -> bool:
    """Whether PIDs of this instance's runs can be judged from this machine (see the docstring)."""
    return isinstance(instance.run_storage, SqliteRunStorage) and not (
        instance.run_launcher.supports_check_run_worker_health
    )


def dead_runs(instance: dg.DagsterInstance) -> Iterator[tuple[dg.DagsterRun, int]]:
    """In-progress runs whose executing process is gone, with that PID."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS)):
        found = _run_pid(instance, run.run_id)
        if found is None:
            continue
        pid, logged_at = found
        started = _started_at(pid)
        # a process started after the run logged its PID is another process with a reused PID
        if started is None or started > logged_at + 1.0:
            yield run, pid


def reap(instance: dg.DagsterInstance) -> list[str]:
    """Mark every dead run failed; one line per run, for the sensor's tick."""
    reaped = []
    for run, pid in dead_runs(instance):
        message = (
            f"The process of this run (PID {pid}) is gone without ending the run (killed, out "
            "of memory, or the machine restarted); marked failed so it holds nothing and is "
            "retried."
        )
        instance.report_run_failed(
            run,
            message,
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        partition = run.tags.get("dagster/partition")
        reaped.append(f"{run.run_id} ({run.job_name}{f' {partition}' if partition else ''})")
    return reaped


@dg.sensor(
    name="dead_runs",
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs whose process is gone (SIGKILL, OOM, reboot), so they hold no "
        "run slot and Dagster's run retries launch them again."
    ),
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    started = time.monotonic()
    if not judges_runs(context.instance):
        return dg.SkipReason(
            "Runs are judged by their launcher's health checks here (shared run storage)."
        )
    reaped = reap(context.instance)
    took = f"{time.monotonic() - started:.2f} s"
    if reaped:
        return dg.SkipReason(f"Marked failed ({took}): " + "; ".join(reaped))
    return dg.SkipReason(f"No dead run ({took}).")
