"""The `dagster` CLI with test-only hooks, for killing or holding a run at a known point.

    python -m tests.faults.hooked_dagster asset materialize -m pipelines.definitions ...

Hooks, each off unless its variable is set:
- FAULTS_PAUSE_AT=<sql name> and FAULTS_PAUSE_FIFO=<fifo>: the first time the loader fetches
  warehouse/sql/<name>.sql (inside the load's open transaction), write "PAUSED-IN-LOAD" to the
  original stdout and block until the fifo is written to.
- FAULTS_SIGNAL_LOCK=1: each time opening the DuckDB file for writing finds it held, write
  "WAITING-FOR-LOCK" (not the read-only look at its schema before the first request).

Signals go to a duplicate of the process's original stdout, so Dagster's compute-log capture
(which redirects fd 1 during a step) does not swallow them. Nothing here ships: it patches the
loader from outside, in this process only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import warehouse.database as database
import warehouse.load as load
from warehouse import locks

_SIGNAL_FD = os.dup(1)


def _signal(text: str) -> None:
    os.write(_SIGNAL_FD, f"{text}\n".encode())


def _install() -> None:
    pause_at = os.environ.get("FAULTS_PAUSE_AT")
    fifo = os.environ.get("FAULTS_PAUSE_FIFO")
    if pause_at and fifo:
        original = load.sql
        paused = False

        def sql(name: str, folder: str = "sql") -> str:
            nonlocal paused
            if name == pause_at and not paused:
                paused = True
                _signal(f"PAUSED-IN-LOAD pid={os.getpid()}")
                with open(fifo) as gate:  # blocks until the test opens it for writing
                    gate.read()
            return original(name, folder)

        load.sql = sql  # type: ignore[assignment]  # a window's load
        database.sql = sql  # type: ignore[assignment]  # a model's rebuild
    if os.environ.get("FAULTS_SIGNAL_LOCK"):
        probe = locks.file_busy

        def signalling_probe(path: Path, *, write: bool) -> bool:
            busy = probe(path, write=write)
            if busy and write:
                _signal("WAITING-FOR-LOCK")
            return busy

        locks.file_busy = signalling_probe  # type: ignore[assignment]


def main() -> int:
    _install()
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", *sys.argv[1:]]
    result = dagster_main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
