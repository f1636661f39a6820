"""The loader: one window of a stream upserted into its table, in one transaction.

`WindowLoad` (opened by `Warehouse.window_load`, warehouse/database.py) takes a window's
normalized chunks one by one (`add`), all inside one transaction: each chunk's new and changed
rows found (warehouse/sql/<table>_diff.sql), the changed ones deleted, the rows and their raw
payloads inserted, the quarantine's rows added; COMMIT at the end, ROLLBACK on any error.

Tables (DDL in warehouse/schema/NNN_*.sql; shapes in warehouse/tables.py), for `calls` and as
well for `alerts` (`alerts_raw`, `alerts_quarantine`, keyed by alert_key, scoped by alerted_at):
- `calls`: one row per call_key (contract: CALLS_SCHEMA).
- `calls_raw`: the API's JSON of every row inserted or changed in `calls`, written in the same
  transaction, so normalization can be replayed without re-fetching: one row per call_key, the
  payload as last received when the row last changed.
- `calls_quarantine`: records that could not become a row, with the reason, keyed by a hash of the
  record's canonical JSON and the window: quarantining the same record twice is one row.

No PRIMARY KEY: the delete of changed rows is scoped by the batch's time range and the batch's
keys together, so loading one day costs the same into 1M or 30M rows. Never deletes a record the
API no longer returns. Values are always bound as parameters; SQL text lives in
warehouse/sql/<table>_<operation>.sql, one file per table operation. Knows nothing of HTTP or
Dagster.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sql_files import sql
from warehouse.tables import QUARANTINE_SCHEMA, RAW_SCHEMAS, SCHEMAS


@dataclass(frozen=True)
class LoadResult:
    inserted: int
    updated: int
    unchanged: int
    quarantined: int  # quarantine rows new to the table in this load


# A window's load runs at LOAD_MEMORY_LIMIT (the connection's own limit is set again when it ends):
# the blocks it writes are evicted as it goes instead of cached, and what needs more spills to the
# connection's temp_directory (docs/performance.md "Memory by day size").
LOAD_MEMORY_LIMIT = "64MB"


class WindowLoad:
    """One window loaded batch by batch in ONE transaction.

    Use as a context manager: `add` upserts a batch, leaving the transaction open; leaving the
    block without an error checks that no call_key came in two batches and commits, an error
    rolls every batch back. The batches must not share a call_key (the client's stream never
    repeats a call); the final check enforces it. The counts equal those of one batch holding
    them all. The keys written stay on the connection (temp table _window_keys) for the
    calls_complete check.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        start: datetime,
        end: datetime,
        lock: AbstractContextManager[object] | None = None,
        memory_limit: str | None = None,
        *,
        load_memory_limit: str | None = LOAD_MEMORY_LIMIT,
        table: str = "calls",
    ) -> None:
        self._con = con
        # the stream's table; its SQL files are <table>_<operation>.sql, its key its first
        # column, its time (which scopes every lookup) its raw table's second
        self._table = table
        self._key = SCHEMAS[table].names[0]
        self._time = RAW_SCHEMAS[table].names[1]
        self._memory_limit = memory_limit  # the connection's own, set again when the load ends
        self._load_memory_limit = load_memory_limit  # None: the load keeps the connection's
        self._lock = lock  # held from BEGIN until COMMIT or ROLLBACK (a lake's window lock)
        self._window = {"window_start": start, "window_end": end}
        self._fresh: bool | None = None  # the window held no row when the first batch came
        self.inserted = self.updated = self.unchanged = self.quarantined = 0
        self._open = False

    def __enter__(self) -> WindowLoad:
        if self._lock is not None:
            self._lock.__enter__()
        try:
            if self._load_memory_limit:
                self._con.execute(sql("memory_limit_set"), {"limit": self._load_memory_limit})
            self._con.execute("BEGIN TRANSACTION")
        except BaseException:
            self._release()
            raise
        self._open = True
        try:
            self._con.execute(sql("window_keys_create"))
        except BaseException:
            self._abort()
            raise
        return self

    def _release(self) -> None:
        try:
            if self._load_memory_limit:  # the connection's own limit again
                with contextlib.suppress(duckdb.Error):  # a connection that broke needs none
                    if self._memory_limit:
                        self._con.execute(sql("memory_limit_set"), {"limit": self._memory_limit})
                    else:
                        self._con.execute("RESET memory_limit")
        finally:
            if self._lock is not None:
                lock, self._lock = self._lock, None
                lock.__exit__(None, None, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._open:
            self._abort()  # a no-op once rolled back
            return
        try:
            row = self._con.execute(sql("window_keys_repeated")).fetchone()
            if row and row[0]:
                raise ValueError(
                    f"{row[0]} call_key values were in two batches of the window's load: a "
                    "window's batches must not share calls. Nothing was committed"
                )
            self._con.execute("COMMIT")
            self._open = False
        except duckdb.TransactionException as exc:
            self._abort()
            if _is_conflict(exc):
                raise WarehouseConflictError(f"the window's load lost a race: {exc}") from exc
            raise
        except BaseException:
            self._abort()
            raise
        finally:
            self._release()

    def _abort(self) -> None:
        """Roll back now: once a statement failed DuckDB refuses anything else."""
        try:
            if self._open:
                self._open = False
                with contextlib.suppress(duckdb.TransactionException):  # a failed COMMIT ended it
                    self._con.execute("ROLLBACK")
        finally:
            self._release()

    def add(self, calls: pa.Table, raw: pa.Table, quarantine: pa.Table) -> None:
        """Upsert one batch inside the open transaction."""
        if not self._open:
            raise RuntimeError("WindowLoad.add outside its `with` block")
        if calls.schema != SCHEMAS[self._table]:
            raise ValueError(f"rows must have the schema of {self._table}, got:\n{calls.schema}")
        if raw.schema != RAW_SCHEMAS[self._table]:
            raise ValueError(f"raw must have the schema of {self._table}_raw, got:\n{raw.schema}")
        if quarantine.schema != QUARANTINE_SCHEMA:
            raise ValueError(f"quarantine must have QUARANTINE_SCHEMA, got:\n{quarantine.schema}")
        keys = calls.column(self._key)
        if pc.count_distinct(keys).as_py() != calls.num_rows:
            raise ValueError(f"rows with the same {self._key}: normalize() dedupes them")
        con = self._con
        try:
            if calls.num_rows:
                span = pc.min_max(calls.column(self._time))
                lo, hi = span["min"].as_py(), span["max"].as_py()
                rng = {"lo": lo, "hi": hi}
                if self._fresh is None:
                    row = con.execute(sql(f"{self._table}_window_rows"), self._window).fetchone()
                    self._fresh = not (row and row[0])
                _scan(con, "window_keys_insert", calls.select([self._key]).rename_columns(["key"]))
                inside = self._window["window_start"] <= lo and hi < self._window["window_end"]
                if self._fresh and inside:
                    # the window held nothing when this load began and no call repeats across
                    # batches: every call is new (no lookup of the rows this load wrote)
                    inserted, updated = calls.num_rows, 0
                    self._write(calls, raw, None)
                else:
                    # the batch's new and changed calls, as an Arrow table: a temp table would be
                    # kept until COMMIT (14 MB a batch of 10,000, spilled, for a day's re-sync)
                    diff = _scan_arrow(con, f"{self._table}_diff", calls, rng)
                    new = diff.column("is_new")
                    inserted = pc.count_distinct(diff.column(self._key).filter(new)).as_py()
                    changed = diff.filter(pc.invert(new))
                    updated = pc.count_distinct(changed.column(self._key)).as_py()
                    if updated:
                        _scan(con, f"{self._table}_delete_changed", changed, rng)
                    if diff.num_rows:
                        _scan(con, f"{self._table}_raw_delete", diff, rng)
                        self._write(calls, raw, diff.column(self._key))
                self.inserted += int(inserted)
                self.updated += int(updated)
                self.unchanged += calls.num_rows - int(inserted) - int(updated)
            if quarantine.num_rows:
                rows = _scan(con, f"{self._table}_quarantine_insert", quarantine)
                self.quarantined += int(rows[0][0]) if rows else 0
        except BaseException:
            self._abort()
            raise

    def record_day(self, status: dict[str, Any]) -> bool:
        """Append this sync of the day to calls_day_syncs inside the open transaction, when it
        changed something: the day's first sync, one that inserted or updated calls, or the one
        that made the day complete. A sync that changed nothing writes nothing, so syncing again
        leaves every table as it was. `status` has the columns of
        warehouse/sql/calls_day_syncs_insert.sql but the load's counts; True when appended."""
        if not self._open:
            raise RuntimeError("WindowLoad.record_day outside its `with` block")
        counts = {"inserted": self.inserted, "updated": self.updated}
        try:
            row = self._con.execute(
                sql("calls_day_syncs_complete"), {"day": status["day"]}
            ).fetchone()
            before = None if row is None else row[0]  # NULL: the day was never recorded
            news = before is None or any(counts.values()) or (status["complete"] and not before)
            if news:
                self._con.execute(sql("calls_day_syncs_insert"), {**status, **counts})
        except BaseException:
            self._abort()
            raise
        return bool(news)

    def _write(self, calls: pa.Table, raw: pa.Table, keys: pa.ChunkedArray | None) -> None:
        """Insert the batch's rows into calls and calls_raw: those of `keys` (new and changed),
        or all of them."""
        if keys is not None and len(keys) != calls.num_rows:
            calls = calls.filter(pc.is_in(calls.column(self._key), value_set=keys))
            raw = raw.filter(pc.is_in(raw.column(self._key), value_set=keys))
        _scan(self._con, f"{self._table}_insert", calls)
        _scan(self._con, f"{self._table}_raw_insert", raw)

    def result(self) -> LoadResult:
        return LoadResult(self.inserted, self.updated, self.unchanged, self.quarantined)


def _scan(
    con: duckdb.DuckDBPyConnection,
    name: str,
    batch: pa.Table,
    params: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """Run warehouse/sql/{name}.sql, which reads the Arrow table `batch` by that name.

    Every .sql file that reads a batch calls it `batch`: DuckDB's replacement scan finds it as
    this function's parameter, for this statement only. The alternatives cost more, measured
    with benchmarks/ab.py (sync, 20 ms, concurrency 4, 7 rounds): a relation's virtual table
    (`from_arrow().query()`, which binds and names a catalog entry per statement inside the
    window's transaction) +7% time and +5% peak RSS; a registered view (register/unregister)
    +23% peak RSS.
    """
    return con.execute(sql(name), params).fetchall()


def _scan_arrow(
    con: duckdb.DuckDBPyConnection, name: str, batch: pa.Table, params: dict[str, Any]
) -> pa.Table:
    """_scan's rows as an Arrow table."""
    return con.execute(sql(name), params).to_arrow_table()


class WarehouseConflictError(RuntimeError):
    """A DuckLake commit conflicted with another writer's (DuckLake checks per table: one
    transaction deleted from a table another inserted into). Nothing was committed; loading the
    window again (on the new snapshot) is the remedy."""


def _is_conflict(exc: duckdb.Error) -> bool:
    return "conflict" in str(exc).lower()
