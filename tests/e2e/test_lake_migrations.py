"""Runs started together on a new lake, or on one a migration behind, all succeed.

What a first UI backfill does with `max_concurrent_runs: 4`, and what the nightly schedule does
after an upgrade that adds a migration: four `calls*` runs of four days start at the same moment,
each in its own process, each opening the lake. The catalog's tables are created once (the others
attach again once they are committed), the migrations are applied once under the catalog's
migration lock (warehouse/lake.py), and every day loads exactly once.

On the lake one migration behind, a fifth run syncs the last day a second time beside the others
(two writers of one day), each day in several chunks of one transaction, while a reader keeps
one session open and queries in a loop: it must only ever see whole days, in the calls and in
the models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from benchmarks.postgres import Postgres
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests.conftest import NOW
from tests.e2e.conftest import BIN, cli_env, materialize
from warehouse import database
from warehouse.database import Warehouse
from warehouse.lake import Lake
from warehouse.sql_files import migrations

DAYS = [NOW.date() - timedelta(days=n) for n in (5, 4, 3, 2)]
CHUNK = 500  # SYNC_CHUNK_RECORDS: a day of 3,000 calls is loaded in six chunks, one transaction

READER = """
import json, select, sys
from warehouse.lake import parse
from warehouse.database import Warehouse
lake = parse(sys.argv[1], sys.argv[2])
with Warehouse(lake, read_only=True) as wh:  # one session held open through every run
    while True:
        wh.con.execute("BEGIN TRANSACTION")  # one snapshot for both counts
        calls = wh.con.execute(
            "SELECT CAST(attempted_at AS DATE)::VARCHAR, count(*), count(DISTINCT call_key) "
            "FROM calls GROUP BY ALL"
        ).fetchall()
        kpis = wh.con.execute(
            "SELECT day::VARCHAR, sum(attempts) FROM trunk_kpis_daily GROUP BY ALL"
        ).fetchall()
        wh.con.execute("COMMIT")
        print(json.dumps({"calls": calls, "kpis": kpis}), flush=True)
        if select.select([sys.stdin], [], [], 0.1)[0]:
            break
"""


@pytest.mark.process
@pytest.mark.timeout(600)
@pytest.mark.parametrize("start", ["new", "one-migration-behind"])
def test_runs_started_together_all_succeed_and_migrate_once(
    start: str, lake: Lake, postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four `dagster asset materialize` processes launched at once (five, beside a reader
    process, on the lake one migration behind): only separate processes race to create the
    catalog and apply the migrations, as a UI backfill's runs do."""
    latest = migrations(lake=True)
    behind = start == "one-migration-behind"
    if behind:  # the lake as the release before the last left it
        with monkeypatch.context() as m:
            m.setattr(database, "migrations", lambda *, lake=False: latest[:-1])
            Warehouse(lake).close()
    # no rate limit: five runs at once would wait for the 600/5 min bucket (pacing is tested
    # on its own)
    sim = Simulator(seed=13, calls_per_day=3_000 if behind else 400, now=NOW, rate_limit=None)
    with sim as simulator:
        env, home = cli_env(simulator, tmp_path, lake, SYNC_CHUNK_RECORDS=str(CHUNK))
        env.update(postgres.env())
        # the instance's own storage exists before four processes start on it
        migrate = [str(BIN / "dagster"), "instance", "migrate"]
        subprocess.run(migrate, env=env, cwd=home, check=True, timeout=120)
        reader = _reader(env, lake) if behind else None
        days = [*DAYS, DAYS[-1]] if behind else DAYS
        runs = [materialize(env, home, day.isoformat()) for day in days]
        outputs = [run.communicate(timeout=500)[0] for run in runs]
        for day, run, out in zip(days, runs, outputs, strict=True):
            assert run.returncode == 0, f"{day}: {out[-3000:]}"
            assert "RUN_SUCCESS" in out
            assert postgres.password not in out
        windows = {day: day_window(day, "UTC") for day in DAYS}
        truth = {
            day: simulator.calls(env["JAMBONZ_ACCOUNT_SID"], w.start, w.end)
            for day, w in windows.items()
        }
    if reader is not None:
        seen, errors = reader.communicate(input="", timeout=120)
        assert reader.returncode == 0, errors[-3000:]
        reads = [json.loads(line) for line in seen.splitlines()]
        assert len(reads) >= 10, "the reader kept reading while the runs wrote"
        whole = {day.isoformat(): len(rows) for day, rows in truth.items()}
        assert min(whole.values()) > 2 * CHUNK  # several chunks a day
        for read in reads:
            for day, n, distinct in read["calls"]:
                assert n == distinct, f"{day}: a call held twice"
                assert n == whole[day], f"{day}: {n} of {whole[day]} calls visible: half a day"
            for day, attempts in read["kpis"]:
                assert attempts == whole[day], f"{day}: the model showed a partial day"

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


def _reader(env: dict[str, str], lake: Lake) -> subprocess.Popen[str]:
    """A session on the lake, held open, querying in a loop until its stdin is closed."""
    return subprocess.Popen(
        [sys.executable, "-c", READER, lake.url, lake.data_path],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
