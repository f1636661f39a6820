"""A backfill the way users launch one: `dagster job backfill` picked up by the daemon.

The daemon launches one run per partition (at most 4 at once, dagster.yaml; the backfill has 5
days, so runs queue behind the four slots and start as others end), which take turns on the
DuckDB file's lock; a separate process reads the warehouse meanwhile. The backfill must finish
with every run successful, no lock error anywhere, and every call once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.jambonz.simulator import Simulator
from tests.conftest import NOW, each_lane
from tests.e2e.conftest import (
    call_keys,
    cli_env,
    materialize,
    running_daemon,
    start_reader,
    stop_reader,
    submit_backfill,
)
from tests.e2e.test_cli import truth_keys
from warehouse.lake import Lake

pytestmark = pytest.mark.process


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)  # the backfill into the file and into a fresh lake


# more days than run slots (4): runs queue, and slots pass on as runs end; a 30-day backfill
# only queues longer
DAYS = [NOW.date() - timedelta(days=n) for n in range(5, 0, -1)]


@pytest.fixture
def daemon_env(
    tmp_path: Path, lane: Lake | None
) -> Iterator[tuple[Simulator, dict[str, str], Path]]:
    with Simulator(seed=11, calls_per_day=150, now=NOW, retention_days=40) as sim:
        # runs take turns at the file: on a loaded machine a run may wait longer than the 120 s
        # default for the lock (SYNC_RETRIES is 0 here, so that would fail it)
        env, home = cli_env(
            sim,
            tmp_path,
            lane,
            PARTITIONS_START_DATE=DAYS[0].isoformat(),
            WAREHOUSE_LOCK_TIMEOUT_S="600",
        )
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


# The file: runs take turns at its lock. The lake's parallel writers are tested where they
# meet (tests/e2e/test_lake.py: five runs at once beside a reader; test_lake_migrations.py:
# four runs at once on a new lake).
@pytest.mark.file_only
@pytest.mark.timeout(900)
def test_a_backfill_through_the_daemon_has_no_lock_error(
    daemon_env: tuple[Simulator, dict[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`dagster job backfill` queued, and the daemon launching its runs, at most 4 at once, each
    in a process of its own (the queue, the run launcher and the file's per-process lock exist
    only there), while a reader process queries the warehouse."""
    sim, env, home = daemon_env
    monkeypatch.chdir(home)  # dagster.yaml's storage paths are relative to where Dagster starts
    # The warehouse exists from the first partition on, so the reader can start at once.
    first = materialize(env, home, DAYS[0].isoformat())
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    with running_daemon(env, home, tmp_path / "daemon.log"):
        reader = start_reader(env)
        try:
            submit_backfill(env, home, DAYS[0], DAYS[-1])
            runs = _wait_for_backfill(home, expected_runs=1 + len(DAYS), timeout_s=800)
            reads = stop_reader(reader)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, [(r.tags.get("dagster/partition"), r.status) for r in failed]
    backfill_runs = [r for r in runs if r.tags.get("dagster/backfill")]
    assert sorted(r.tags["dagster/partition"] for r in backfill_runs) == [
        d.isoformat() for d in DAYS
    ]
    assert reads >= len(DAYS)  # the reader kept querying the warehouse all through the backfill
    assert "Conflicting lock" not in (tmp_path / "daemon.log").read_text()
    keys = call_keys(env)
    assert len(keys) == len(set(keys))
    assert set(keys) == truth_keys(sim, env, DAYS)
