"""The loader over real DuckDB files: upsert, quarantine, rollback, lock, migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

import warehouse.database as database_module
import warehouse.load as load_module
from pipelines.normalize import Normalized
from tests.conftest import load_capture
from tests.helpers import load_window, normalize_dicts
from warehouse.database import Warehouse, WarehouseLockedError
from warehouse.lake import Lake, LakeLockError, migration_lock
from warehouse.lake import parse as parse_lake
from warehouse.load import WarehouseConflictError
from warehouse.sql_files import migrations
from warehouse.tables import CALL_COLUMN_NAMES

WS = datetime(2026, 11, 21, tzinfo=UTC)
WE = datetime(2026, 11, 22, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
ACCOUNT = "173c3dbf-acbb-4e31-9668-a4f3445cb971"
TABLES = ("calls", "calls_raw", "calls_quarantine")


def real_records() -> list[dict[str, Any]]:
    return list(load_capture("52_acctA_count0.http").json()["data"])


def norm(records: list[dict[str, Any]], synced_at: datetime = T1) -> Normalized:
    return normalize_dicts(
        records, synced_at=synced_at, scope_sid=ACCOUNT, window_start=WS, window_end=WE
    )


def load(wh: Warehouse, n: Normalized) -> load_module.LoadResult:
    return load_window(wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=WE)


def snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {t: wh.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}  # noqa: S608


@pytest.fixture(params=["file", "lake", "lake-duckdb-catalog"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """Every lane: the DuckDB file, a DuckLake with its catalog in PostgreSQL, and one with its
    catalog in a local DuckDB file (the same upsert, rollback and quarantine)."""
    if request.param == "lake":
        target: Path | Lake = request.getfixturevalue("lake")
    elif request.param == "lake-duckdb-catalog":
        target = parse_lake(f"ducklake:duckdb:{tmp_path / 'catalog.ducklake'}", str(tmp_path / "d"))
    else:
        target = tmp_path / "nested" / "wh.duckdb"
    with Warehouse(target, lock_timeout_s=5) as w:
        yield w


def test_load_real_window_then_reload_is_identical(wh: Warehouse) -> None:
    records = real_records()
    records.append(dict(records[0], call_sid=None, sip_callid=None))  # quarantined
    first = load(wh, norm(records))
    assert (first.inserted, first.updated, first.unchanged, first.quarantined) == (948, 0, 0, 1)
    before = snapshot(wh)
    assert [len(before[t]) for t in TABLES] == [948, 948, 1]
    columns = [r[0] for r in wh.con.execute("DESCRIBE calls").fetchall()]
    assert tuple(columns) == CALL_COLUMN_NAMES

    again = load(wh, norm(list(reversed(records)), synced_at=T2))
    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 948, 0)
    assert snapshot(wh) == before  # synced_at included: unchanged rows keep theirs
    assert wh.count_calls(WS, WE) == 948
    assert wh.count_calls(WS, WE, ACCOUNT) == 948
    assert wh.count_calls(WS, WE, "someone-else") == 0
    assert wh.count_calls(WE, WE + timedelta(days=1)) == 0


def test_changed_call_is_replaced_with_its_raw_payload(wh: Warehouse) -> None:
    records = real_records()
    load(wh, norm(records))
    changed = dict(records[5], duration=records[5]["duration"] + 1, plan="gold")
    records[5] = changed
    result = load(wh, norm(records, synced_at=T2))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 947)
    sid = changed["call_sid"]
    duration, extra, synced = wh.con.execute(
        "SELECT duration, extra, synced_at FROM calls WHERE call_key = $k", {"k": sid}
    ).fetchone() or (None, None, None)
    assert (duration, extra, synced) == (changed["duration"], '{"plan":"gold"}', T2)
    assert wh.con.execute("SELECT count(*) FROM calls").fetchone() == (948,)
    payload, raw_synced = wh.con.execute(
        "SELECT payload->>'$.plan', synced_at FROM calls_raw WHERE call_key = $k", {"k": sid}
    ).fetchone() or (None, None)
    assert (payload, raw_synced) == ("gold", T2)
    assert wh.con.execute("SELECT count(*) FROM calls_raw").fetchone() == (948,)
    others = wh.con.execute("SELECT DISTINCT synced_at FROM calls WHERE call_key <> $k", {"k": sid})
    assert others.fetchall() == [(T1,)]


def test_calls_no_longer_returned_are_never_deleted(wh: Warehouse) -> None:
    records = real_records()
    load(wh, norm(records))
    before = snapshot(wh)
    fewer = records[::10]
    result = load(wh, norm(fewer, synced_at=T2))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, len(fewer))
    assert snapshot(wh) == before


def test_quarantine_is_idempotent_and_the_rest_loads(wh: Warehouse) -> None:
    records = real_records()
    records[1] = dict(records[1], duration="abc")
    records[2] = dict(records[2], answered="yes")
    records[3] = dict(records[3], sip_status=99999999999)
    records[4] = dict(records[4], attempted_at="notadate")
    first = load(wh, norm(records))
    assert (first.inserted, first.quarantined) == (944, 4)
    second = load(wh, norm(records, synced_at=T2))
    assert (second.unchanged, second.quarantined) == (944, 0)
    rows = wh.con.execute(
        "SELECT reason, scope_sid, window_start, window_end, quarantined_at FROM calls_quarantine "
        "ORDER BY reason"
    ).fetchall()
    assert [r[0].split(":")[0] for r in rows] == [
        "answered",
        "attempted_at",
        "duration",
        "sip_status",
    ]
    assert {r[1:] for r in rows} == {(ACCOUNT, WS, WE, T1)}
    # the same record in another window is another quarantine row
    n = normalize_dicts(records, synced_at=T2, scope_sid=ACCOUNT, window_start=WS, window_end=T1)
    other = load_window(wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=T1)
    assert other.quarantined == 4


def _changed_batch() -> Normalized:
    records = real_records()
    records[0] = dict(records[0], duration=1)  # changed
    records.append(dict(records[1], call_sid="brand-new"))  # new
    records.append(dict(records[2], duration="abc"))  # quarantined
    return norm(records, synced_at=T2)


def test_exception_after_the_delete_rolls_everything_back(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(wh, norm(real_records()))
    before = snapshot(wh)
    real_sql = load_module.sql
    reached = []

    def failing_sql(name: str, folder: str = "sql") -> str:
        if name == "calls_raw_insert":  # after calls were deleted and re-inserted
            reached.append(name)
            return "SELECT error('injected failure')"
        return real_sql(name, folder)

    monkeypatch.setattr(load_module, "sql", failing_sql)
    with pytest.raises(duckdb.Error, match="injected failure"):
        load(wh, _changed_batch())
    assert reached == ["calls_raw_insert"]
    assert snapshot(wh) == before
    monkeypatch.undo()
    result = load(wh, _changed_batch())  # and the connection is usable afterwards
    assert (result.inserted, result.updated, result.quarantined) == (1, 1, 1)


def test_quarantine_table_with_wrong_schema_rolls_everything_back(wh: Warehouse) -> None:
    load(wh, norm(real_records()))
    wh.con.execute("ALTER TABLE calls_quarantine DROP COLUMN reason")
    before = snapshot(wh)
    with pytest.raises(duckdb.Error):
        load(wh, _changed_batch())
    assert snapshot(wh) == before


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as w:
        load(w, norm(real_records()[:10]))
    for _ in range(2):
        with Warehouse(path) as w:
            versions = w.con.execute("SELECT version, name FROM schema_version ORDER BY 1")
            assert versions.fetchall() == [(v, name) for v, name, _ in migrations()]
            assert w.count_calls(WS, WE) == 10
    with Warehouse(path, read_only=True) as ro:
        assert ro.count_calls(WS, WE) == 10
        assert ro.query("calls_count", {"window_start": WS, "window_end": WE, "account_sid": None})
        with pytest.raises(duckdb.Error):
            ro.con.execute("DELETE FROM calls")


def test_calls_raw_of_an_older_file_is_kept_when_its_payload_becomes_zstd(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as w:
        load(w, norm(real_records()[:10]))
        before = snapshot(w)
    with duckdb.connect(str(path)) as con:  # as a file made before migration 003 looks
        con.execute("DELETE FROM schema_version WHERE version >= 3")
        con.execute("CREATE TABLE old_raw AS SELECT * FROM calls_raw")
        con.execute("DROP TABLE calls_raw")
        con.execute("ALTER TABLE old_raw RENAME TO calls_raw")
    with Warehouse(path) as w:
        assert snapshot(w) == before
        w.con.execute("CHECKPOINT")
        encodings = w.con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('calls_raw') "
            "WHERE column_name = 'payload' AND segment_type <> 'VALIDITY'"
        ).fetchall()
        assert ("ZSTD",) in encodings
        payload_type = w.con.execute("SELECT typeof(payload) FROM calls_raw LIMIT 1").fetchone()
        assert payload_type == ("JSON",)


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
con.close()
"""


def test_model_rows_of_a_file_older_than_calls_day_syncs_count_as_complete(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    day = WS.date()
    with Warehouse(path) as w:
        load(w, norm(real_records()))
        args = {"day": day, "tz": "UTC", "window_start": WS, "window_end": WE}
        assert w.rebuild_model("answer_rates_daily", **args) > 0
        before = w.con.execute("SELECT * EXCLUDE (complete) FROM answer_rates_daily").fetchall()
    with duckdb.connect(str(path)) as con:  # as a file made before migration 008 looks
        con.execute("DELETE FROM schema_version WHERE version = 8")
        con.execute("DROP VIEW calls_days")
        con.execute("DROP TABLE calls_day_syncs")
        for table in ("call_durations_daily", "answer_rates_daily", "trunk_kpis_daily"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN complete")
        con.execute("ALTER TABLE calls_hourly DROP COLUMN complete")
    with Warehouse(path) as w:
        rows = w.con.execute("SELECT * EXCLUDE (complete) FROM answer_rates_daily").fetchall()
        assert rows == before
        assert w.con.execute("SELECT DISTINCT complete FROM answer_rates_daily").fetchall() == [
            (True,)
        ]
        assert w.con.execute("SELECT count(*) FROM calls_days").fetchall() == [(0,)]
        # a day with no calls_days row (synced before it existed) is rebuilt as complete
        w.rebuild_model("answer_rates_daily", **args)
        assert w.con.execute("SELECT DISTINCT complete FROM answer_rates_daily").fetchall() == [
            (True,)
        ]


def test_lock_error_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    Warehouse(path).close()
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseLockedError) as info:
            Warehouse(path, lock_timeout_s=0.3)
        message = str(info.value)
        assert str(path) in message
        assert "another process" in message
        assert "Dagster run" in message
        assert "read_only" in message
        assert "copy" in message
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    with Warehouse(path, lock_timeout_s=5) as w:  # released: opens at once
        assert w.count_calls(WS, WE) == 0


def test_the_memory_limit_reaches_duckdb_and_it_spills_into_a_folder_of_the_process(
    tmp_path: Path,
) -> None:
    def limit(w: Warehouse) -> str:
        (value,) = w.con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
        return str(value)

    with Warehouse(tmp_path / "a.duckdb") as w:
        assert limit(w) in ("488.2 MiB", "512.0 MB")  # DEFAULT_MEMORY_LIMIT, as DuckDB prints it
        with w.window_load(window_start=WS, window_end=WE):
            assert limit(w) in ("61.0 MiB", "64.0 MB")  # LOAD_MEMORY_LIMIT while a window loads
        assert limit(w) in ("488.2 MiB", "512.0 MB")
        # not DuckDB's `.tmp` in whatever folder the run started in
        (folder,) = w.con.execute("SELECT current_setting('temp_directory')").fetchone() or ("",)
        assert Path(folder).is_absolute()
        assert Path(folder).name == f"jambonz-warehouse-{os.getpid()}"
    with Warehouse(tmp_path / "b.duckdb", memory_limit="2GB") as w:
        assert limit(w) in ("1.8 GiB", "2.0 GB")
        with pytest.raises(ValueError, match="boom"), w.window_load(window_start=WS, window_end=WE):
            raise ValueError("boom")
        assert limit(w) in ("1.8 GiB", "2.0 GB")  # set again after a failed load too


def test_a_lake_window_loads_one_run_at_a_time_and_other_days_go_on(lake: Lake) -> None:
    """Two writers of one window in a lake: the second waits for the first's lock (PostgreSQL
    advisory lock in the catalog) and gives up after its lock timeout; another day's window is
    not held up; the commit releases it."""
    n = norm(real_records())
    with Warehouse(lake) as first, Warehouse(lake, lock_timeout_s=0.5) as second:
        with first.window_load(window_start=WS, window_end=WE) as held:
            held.add(n.calls, n.raw, n.quarantine)
            with (
                pytest.raises(LakeLockError, match="another run has been loading the window"),
                second.window_load(window_start=WS, window_end=WE),
            ):
                pass
            other_day = WS + timedelta(days=1)
            with second.window_load(
                window_start=other_day, window_end=other_day + timedelta(days=1)
            ):
                pass  # a different window: its own lock, granted at once
        # committed and released: the second writer now loads the window and changes nothing
        assert load(second, n).inserted == 0
        assert len(snapshot(second)["calls"]) == len(n.calls)


def test_a_lake_holding_the_migration_lock_makes_opening_wait_then_give_up(lake: Lake) -> None:
    """A run migrating the lake holds the catalog's migration lock; another run opening a lake
    that lacks a migration waits for it, and past its lock timeout gives up saying why (a
    failure the step retries)."""
    latest = migrations(lake=True)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(database_module, "migrations", lambda *, lake=False: latest[:-1])
        Warehouse(lake).close()  # one migration behind
    with (
        migration_lock(lake, timeout_s=5),
        pytest.raises(LakeLockError, match="migrating the lake's schema"),
    ):
        Warehouse(lake, lock_timeout_s=0.5)
    with Warehouse(lake) as wh:  # the lock released: it migrates
        versions = wh.con.execute("SELECT version FROM schema_version").fetchall()
    assert sorted(v for (v,) in versions) == [v for v, _, _ in latest]


def test_a_migration_that_loses_a_commit_race_says_so(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer creates the table a migration creates between its DDL and its COMMIT: the
    error is the conflict, classified (WarehouseConflictError: the step tries again), not the
    "cannot rollback" of a ROLLBACK after a failed COMMIT."""
    Warehouse(lake).close()
    race = (990, "race_table", "CREATE TABLE race_table (x INTEGER)")
    with Warehouse(lake) as other:
        real_sql = database_module.sql

        def racing(name: str) -> str:
            if name == "schema_version_insert":  # inside the migration's transaction
                other.con.execute("CREATE TABLE race_table (x INTEGER)")
            return real_sql(name)

        monkeypatch.setattr(
            database_module, "migrations", lambda *, lake=False: [*migrations(lake=lake), race]
        )
        monkeypatch.setattr(database_module, "sql", racing)
        with pytest.raises(WarehouseConflictError, match="lost a commit race") as raised:
            Warehouse(lake)
    assert "cannot rollback" not in str(raised.value)
    assert "race_table" in str(raised.value)


def test_a_process_reads_a_lakes_schema_version_once_and_a_files_at_every_open(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake this process found up to date is not asked again (two catalog round trips an
    open); code that wants other migrations asks again; a DuckDB file is asked at every open."""
    asked: list[str] = []
    real_missing = Warehouse._missing

    def missing(self: Warehouse, wanted: list[tuple[int, str, str]]) -> bool:
        asked.append(self.name)
        return real_missing(self, wanted)

    monkeypatch.setattr(Warehouse, "_missing", missing)
    with Warehouse(lake) as first:
        assert first.schema_checked
    with Warehouse(lake) as again:
        assert not again.schema_checked  # the run's look before any request asks itself
        again.check_schema()
        assert again.schema_checked
    assert asked == [lake.describe()]
    path = tmp_path / "wh.duckdb"
    for _ in range(2):
        with Warehouse(path) as w:
            assert w.schema_checked
    assert asked == [lake.describe(), str(path), str(path)]
    latest = migrations(lake=True)
    newer = (990, "newer_table", "CREATE TABLE newer_table (x INTEGER)")
    monkeypatch.setattr(database_module, "migrations", lambda *, lake=False: [*latest, newer])
    with Warehouse(lake) as upgraded:  # a release with one more migration: asked, and applied
        assert upgraded.con.execute("SELECT count(*) FROM newer_table").fetchall() == [(0,)]
    assert asked == [lake.describe(), str(path), str(path), lake.describe()]
