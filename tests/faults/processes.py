"""Child processes for the process-fault tests: a `dagster` CLI run, a holder of the file.

Each child leads its own process group (so a kill takes all it started) and its output is read by
a thread, so every wait has a bound and a failure shows what the child printed.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.e2e.conftest import ENV_VARS, Pipeline

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

    def drain(self) -> str:
        """What the child printed so far, without waiting."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.text
            if line is None:
                self.lines.put(None)  # keep the end for finish()
                return self.text
            self.seen.append(line)

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


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group (a run
    started by `_start` leads its own group: its threads and any helper process it started)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cli_env(pipeline: Pipeline, root: Path, **extra: str) -> dict[str, str]:
    """The environment of a `dagster` CLI run on `pipeline`'s settings (its simulator, and its
    warehouse: the file, or the lake with the catalog's PG* variables from os.environ), with
    DAGSTER_HOME=root/dagster_home holding the repository's dagster.yaml; `extra` on top."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(pipeline.env)
    env["DAGSTER_HOME"] = str(home)
    env.update(extra)
    return env


def start(procs: list[Proc], args: list[str], env: dict[str, str], cwd: Path) -> Proc:
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


def materialize(procs: list[Proc], env: dict[str, str], day: date) -> Proc:
    """`dagster asset materialize --select calls*` of `day`, through tests/faults/hooked_dagster."""
    args = [sys.executable, "-m", "tests.faults.hooked_dagster", "asset", "materialize"]
    args += ["-m", "pipelines.definitions", "--select", "calls*", "--partition", day.isoformat()]
    env = {**env, "PYTHONPATH": str(REPO_ROOT)}
    return start(procs, args, env, Path(env["DAGSTER_HOME"]))


def gate(tmp_path: Path) -> Path:
    fifo = tmp_path / "gate.fifo"
    os.mkfifo(fifo)
    return fifo


def open_gate(fifo: Path) -> None:
    with open(fifo, "w") as gate:
        gate.write("go\n")


class WatchedSimulator(Simulator):
    """Says which day each RecentCalls request asks for, and can hold its Nth request."""

    def __init__(self, hold_at: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_at = hold_at
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.days: queue.Queue[str] = queue.Queue()
        self._seen = 0
        self._seen_lock = threading.Lock()

    def handle(self, path: str, auth: str | None) -> Any:
        start = parse_qs(urlsplit(path).query).get("start", [""])[0]
        self.days.put(start[:10])
        with self._seen_lock:
            self._seen += 1
            hold = self._seen == self.hold_at
        if hold:
            self.arrived.set()
            self.release.wait(WAIT_S)
        return super().handle(path, auth)

    def forget_requests(self) -> None:
        while not self.days.empty():
            self.days.get_nowait()

    def wait_for_request(self, day: date, within_s: float) -> float:
        """Seconds until a request for `day` arrives; fails past within_s."""
        started = time.monotonic()
        while True:
            left = started + within_s - time.monotonic()
            try:
                if self.days.get(timeout=max(left, 0.0)) == day.isoformat():
                    return time.monotonic() - started
            except queue.Empty:
                pytest.fail(f"no RecentCalls request for {day} within {within_s} s")
