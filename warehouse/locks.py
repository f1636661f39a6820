"""Who holds the DuckDB file: turns DuckDB's lock error into a process kind and what to do.

`file_busy` asks the kernel whether another process holds the lock DuckDB takes (a POSIX record
lock on the whole file, exclusive for a writer, shared for a reader), without opening a database:
a microsecond probe where a refused ATTACH costs ~30 ms of CPU, so a run waiting for the file
sleeps rather than spins.

DuckDB's lock error names the holder's executable and PID ("Conflicting lock is held in
/usr/bin/python3.11 (PID 4242)"). On Linux the PID's command line tells a Dagster run from a
DuckDB CLI or a notebook. Only the kind of program and its PID are reported, never its
arguments (a command line may carry anything). Knows nothing of HTTP or Dagster.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

_HELD = re.compile(r"lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def file_busy(path: Path, *, write: bool) -> bool:
    """Whether another process holds a lock on `path` that DuckDB's open would conflict with.

    Takes the lock for an instant and lets it go (POSIX locks are per process: nothing else of
    this process may have the file open, which holds while a Warehouse waits to open it). False
    when the file cannot be probed: then the real open says what is wrong.
    """
    try:
        fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, (fcntl.LOCK_EX if write else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        with contextlib.suppress(OSError):
            fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def lock_holder(error: BaseException | str) -> str:
    """A phrase naming the process that holds the file and what to do about it.

    e.g. "a Dagster process (PID 4242): wait for that run to finish".
    """
    m = _HELD.search(str(error))
    if m is None:
        return "a process DuckDB did not name: find it with `fuser <file>` and close it"
    pid = int(m.group("pid"))
    argv = _cmdline(pid) or [m.group("exe")]
    words = " ".join(Path(a).name for a in argv[:4]).lower()
    program = Path(argv[0]).name.lower()
    if "dagster" in words:
        return (
            f"a Dagster process (PID {pid}): a run, `dagster dev` or a `dagster` CLI command; "
            "wait for that run to finish (or stop it) and retry"
        )
    if program.startswith("duckdb"):
        return f"the DuckDB CLI (PID {pid}): quit that session (.exit) and retry"
    if "ipykernel" in words or "jupyter" in words:
        return (
            f"a Jupyter kernel (PID {pid}): close its connection (con.close()) or restart the "
            "kernel, and retry"
        )
    if program.startswith("python"):
        return (
            f"a Python process (PID {pid}, not a Dagster run): close its DuckDB connection or "
            "end it, and retry"
        )
    return f"{program or 'a process'} (PID {pid}): close its connection to the file and retry"
