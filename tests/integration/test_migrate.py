"""`python -m warehouse.migrate`: a warehouse copied whole into a new file and proven equal; a
target holding data refused; a source DuckDB cannot read named with what to do."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from benchmarks.postgres import Postgres
from tests.helpers import load_window, normalize_dicts
from tests.integration.test_trunk_kpis import generate
from warehouse.database import Warehouse, WarehouseUnopenableError
from warehouse.lake import Lake
from warehouse.migrate import TABLES, MigrateError, migrate

FIXTURES = Path(__file__).parents[1] / "fixtures"
WS, WE = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)


def snapshot(path: Path | Lake) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every data table, sorted: what the copy must reproduce."""
    with Warehouse(path, read_only=True) as wh:
        return {t: sorted(wh.con.table(t).fetchall(), key=repr) for t in TABLES}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    records = generate(seed=11)
    records.append({**records[0], "attempted_at": "not a time"})  # one quarantined record
    n = normalize_dicts(records, synced_at=WE, scope_sid="sp", window_start=WS, window_end=WE)
    assert n.quarantine.num_rows == 1
    path = tmp_path / "source.duckdb"
    with Warehouse(path) as wh:
        load_window(wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=WE)
        for day in (date(2026, 3, 8), date(2026, 11, 1)):
            for model in ("trunk_kpis_daily", "calls_hourly", "answer_rates_daily"):
                start = datetime.combine(day, time(0), tzinfo=UTC)
                end = start + timedelta(days=1)
                wh.rebuild_model(model, day=day, tz="UTC", window_start=start, window_end=end)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warehouse.migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_file_is_copied_whole_and_proven_equal(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.duckdb"
    done = run("--from", str(source), "--to", str(target))
    assert done.returncode == 0, done.stderr
    before = snapshot(source)
    assert len(before["calls"]) > 3000
    for table in ("calls_quarantine", "trunk_kpis_daily", "calls_hourly"):
        assert before[table], table
    assert snapshot(target) == before
    for table in TABLES:
        assert any(line.startswith(f"{table} ") for line in done.stdout.splitlines()), table
    assert f"{len(before['calls']):,} rows  equal" in done.stdout


def test_an_export_folder_is_copied_too(source: Path, tmp_path: Path) -> None:
    """The path from a DuckDB 2.x file: EXPORT DATABASE (FORMAT parquet), then migrate."""
    folder = tmp_path / "export"
    with Warehouse(source, read_only=True) as wh:
        wh.con.execute(f"EXPORT DATABASE '{folder}' (FORMAT parquet)")
    target = tmp_path / "target.duckdb"
    assert migrate(folder, target)
    assert snapshot(target) == snapshot(source)


def test_a_target_that_holds_data_is_refused_and_left_alone(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.duckdb"
    assert run("--from", str(source), "--to", str(target)).returncode == 0
    before = snapshot(target)
    done = run("--from", str(source), "--to", str(target))
    assert done.returncode == 2
    assert f"--to {target} already holds data: calls (" in done.stderr
    assert "nothing was copied" in done.stderr
    assert snapshot(target) == before


def test_a_source_that_is_not_a_warehouse_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MigrateError, match=r"not an EXPORT DATABASE .* \(no calls.parquet"):
        migrate(tmp_path / "empty", tmp_path / "t.duckdb")
    newer = tmp_path / "newer.duckdb"  # an empty warehouse, as the project's DuckDB 2.0.1 wrote it
    newer.write_bytes(gzip.decompress((FIXTURES / "warehouse-duckdb-2.0.1.duckdb.gz").read_bytes()))
    with pytest.raises(
        WarehouseUnopenableError,
        match=r"(?s)written by a newer DuckDB.*docs/operations.md 'DuckDB version'",
    ):
        Warehouse(newer)  # a run's first step says the same
    done = run("--from", str(newer), "--to", str(tmp_path / "t2.duckdb"))
    assert done.returncode == 2
    assert f"cannot read --from {newer} (a file written by a newer DuckDB" in done.stderr
    assert 'docs/operations.md "DuckDB version"' in done.stderr


def test_a_file_moves_into_a_lake_in_one_command(
    source: Path, lake: Lake, postgres: Postgres
) -> None:
    env = {**os.environ, **postgres.env(), "WAREHOUSE_DATA_PATH": lake.data_path}
    done = run("--from", str(source), "--to", lake.url, env=env)
    assert done.returncode == 0, done.stderr
    assert "calls_raw" in done.stdout
    assert snapshot(lake) == snapshot(source)
    again = run("--from", str(source), "--to", lake.url, env=env)
    assert again.returncode == 2
    assert "already holds data" in again.stderr
    assert postgres.password not in again.stderr + again.stdout


def test_upgrade_brings_a_warehouse_up_to_date_and_copies_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--upgrade`, the deploy step: a file one migration behind gets the missing migration and
    its rows stay; run again, it changes nothing; a schema newer than the code is refused."""
    import warehouse.database as database_module
    from warehouse.sql_files import migrations

    latest = migrations()
    path = tmp_path / "behind.duckdb"
    with monkeypatch.context() as m:
        m.setattr(database_module, "migrations", lambda *, lake=False: latest[:-1])
        Warehouse(path).close()
    env = {**os.environ, "WAREHOUSE_PATH": str(path)}
    env.pop("WAREHOUSE_URL", None)
    for _ in range(2):
        done = run("--upgrade", env=env)
        assert done.returncode == 0, done.stderr
        assert f"schema up to date (version {latest[-1][0]}, {len(latest)} migrations)" in (
            done.stdout
        )
    with Warehouse(path) as wh:
        wh.con.execute("INSERT INTO schema_version VALUES (999, 'from_a_newer_release', now())")
    done = run("--upgrade", "--to", str(path))
    assert done.returncode == 2
    assert "schema version 999" in done.stderr
    assert "Upgrade this worker" in done.stderr


def test_a_file_of_the_previous_release_is_copied_and_its_costs_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source before migrations 010 and 011 (no alerts tables, costs in `extra`): its tables
    and columns are copied and proven equal, then the costs are moved out of `extra` as an
    upgrade in place moves them."""
    import pyarrow as pa

    import warehouse.database as database_module
    from warehouse.sql_files import migrations

    records = generate(seed=11)
    n = normalize_dicts(records, synced_at=WE, scope_sid="sp", window_start=WS, window_end=WE)
    rated = {r["call_key"]: r for r in n.calls.to_pylist() if r["cost"] is not None}
    assert rated
    old = []
    for row in n.calls.to_pylist():
        moved = {k: row.pop(k) for k in ("cost", "rate", "billed_seconds")}
        kept = {k: v for k, v in moved.items() if v is not None}
        row["extra"] = json.dumps(kept, sort_keys=True, separators=(",", ":")) if kept else None
        old.append(row)
    path = tmp_path / "previous.duckdb"
    with monkeypatch.context() as m:
        before = [v for v in migrations() if v[0] < 10]
        m.setattr(database_module, "migrations", lambda *, lake=False: before)
        with Warehouse(path) as wh:
            wh.con.register("old", pa.Table.from_pylist(old))
            wh.con.execute("INSERT INTO calls BY NAME SELECT * FROM old")
    copied = migrate(path, tmp_path / "new.duckdb")
    assert [c.table for c in copied if c.table.startswith("alerts")] == []
    assert {c.table: c.rows for c in copied}["calls"] == len(old)
    with Warehouse(tmp_path / "new.duckdb", read_only=True) as wh:
        got = wh.con.execute(
            "SELECT call_key, cost, rate, billed_seconds, extra FROM calls WHERE cost IS NOT NULL"
        ).fetchall()
    assert {k: (c, r, b, e) for k, c, r, b, e in got} == {
        k: (r["cost"], r["rate"], r["billed_seconds"], r["extra"]) for k, r in rated.items()
    }
