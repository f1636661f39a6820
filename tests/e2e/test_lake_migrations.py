"""Runs started together on a new lake, or on one a migration behind, all succeed.

What a first UI backfill does with `max_concurrent_runs: 4`, and what the nightly schedule does
after an upgrade that adds a migration: four `calls*` runs of four days start at the same moment,
each in its own process, each opening the lake. The catalog's tables are created once (the others
attach again once they are committed), the migrations are applied once under the catalog's
migration lock (warehouse/lake.py), and every day loads exactly once.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests.conftest import NOW
from tests.e2e.conftest import BIN, cli_env, materialize
from warehouse import load
from warehouse.lake import Lake
from warehouse.load import Warehouse
from warehouse.sql_files import migrations

DAYS = [NOW.date() - timedelta(days=n) for n in (5, 4, 3, 2)]


@pytest.mark.process
@pytest.mark.timeout(600)
@pytest.mark.parametrize("start", ["new", "one-migration-behind"])
def test_runs_started_together_all_succeed_and_migrate_once(
    start: str,
    simulator: Simulator,
    lake: Lake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four `dagster asset materialize` processes launched at once: only separate processes
    race to create the catalog and apply the migrations, as a UI backfill's runs do."""
    latest = migrations(lake=True)
    if start == "one-migration-behind":  # the lake as the release before the last left it
        with monkeypatch.context() as m:
            m.setattr(load, "migrations", lambda *, lake=False: latest[:-1])
            Warehouse(lake).close()
    env, home = cli_env(simulator, tmp_path, lake)
    # the instance's own storage exists before four processes start on it
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=env, cwd=home, check=True, timeout=120
    )
    runs = [materialize(env, home, day.isoformat()) for day in DAYS]
    outputs = [run.communicate(timeout=500)[0] for run in runs]
    for day, run, out in zip(DAYS, runs, outputs, strict=True):
        assert run.returncode == 0, f"{day}: {out[-3000:]}"
        assert "RUN_SUCCESS" in out

    with Warehouse(lake, read_only=True) as wh:
        versions = [v for (v,) in wh.con.execute("SELECT version FROM schema_version").fetchall()]
        calls = wh.con.execute(
            "SELECT call_key, attempted_at::DATE, trunk, answered FROM calls"
        ).fetchall()
        model = wh.con.execute(
            "SELECT day, trunk, sum(attempts)::INT, sum(answered)::INT "
            "FROM answer_rates_daily GROUP BY ALL"
        ).fetchall()
    assert sorted(versions) == [v for v, _, _ in latest], "every migration applied once"
    keys = [key for key, *_ in calls]
    assert len(keys) == len(set(keys)), "a call held twice"
    windows = {day: day_window(day, "UTC") for day in DAYS}
    truth = {
        day: simulator.calls(env["JAMBONZ_ACCOUNT_SID"], w.start, w.end)
        for day, w in windows.items()
    }
    assert Counter(day for _, day, *_ in calls) == {day: len(rows) for day, rows in truth.items()}
    # the model, against a count of the simulator's own records (trunk and answered as sent)
    expected: Counter[tuple[object, ...]] = Counter()
    for day, records in truth.items():
        for r in records:
            expected[(day, r["trunk"], "attempts")] += 1
            expected[(day, r["trunk"], "answered")] += bool(r["answered"])
    got: Counter[tuple[object, ...]] = Counter()
    for day, trunk, attempts, answered in model:
        got[(day, trunk, "attempts")] += attempts
        got[(day, trunk, "answered")] += answered
    assert +got == +expected
