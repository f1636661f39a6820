"""The warehouse: a DuckDB file, or a DuckLake, opened, migrated and asked.

`Warehouse(path_or_lake)` ATTACHes the DuckDB file (waiting while another process holds it) or the
DuckLake (its catalog in PostgreSQL or a DuckDB file, its Parquet data in a folder or a bucket) as
`warehouse`, applies the migrations it lacks (warehouse/schema/NNN_*.sql, recorded in
`schema_version`; refusing a schema a newer release wrote), and serves the run: a window's load
(`window_load`: warehouse/load.py), the checks (warehouse/checks/), the reports
(warehouse/reports/), a day of a model rebuilt (warehouse/models/<table>.sql), the lake's upkeep.
Values are always bound as parameters. Knows nothing of HTTP or Dagster.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from warehouse import locks
from warehouse.checks import CheckOutcome
from warehouse.lake import CONFLICT_RETRIES, Lake, load_extensions, migration_lock, window_lock
from warehouse.lake import maintain as lake_maintain
from warehouse.load import LOAD_MEMORY_LIMIT, WarehouseConflictError, WindowLoad, _is_conflict
from warehouse.sql_files import attach as attach_sql
from warehouse.sql_files import migrations, model_names, sql

# DuckDB's own default is 80% of RAM, which it then keeps: a 1M-call day peaked at 1.5 GB with it.
# The run's queries (models, checks, reads) run at WAREHOUSE_MEMORY_LIMIT; a window's load at
# LOAD_MEMORY_LIMIT: the blocks it writes are evicted as it goes instead of cached, and what needs
# more spills to temp_directory() (docs/performance.md "Memory by day size").
DEFAULT_MEMORY_LIMIT = "512MB"


def temp_directory() -> str:
    """Where this process's DuckDB spills: a folder of its own (the default for the in-memory
    database a warehouse is attached to is `.tmp` in the working directory)."""
    return str(Path(tempfile.gettempdir()) / f"jambonz-warehouse-{os.getpid()}")


# how long opening waits for another process (WAREHOUSE_LOCK_TIMEOUT_S)
DEFAULT_LOCK_TIMEOUT_S = 120.0

# The file is attached with ROW_GROUP_SIZE 30720 (warehouse/sql/attach_read_write.sql; DuckDB's
# default is 122,880): a window's batches are appended in one transaction, and DuckDB writes
# (compresses) each row group once it is full, in the loader's thread while the next pages are
# fetched; what is left for COMMIT and the checkpoint is at most one row group (~0.15 s for the
# 200k day) instead of up to 122,879 rows (~1-2 s). The file is ~10% larger; scans skip by
# min/max at a finer grain. (docs/performance.md)


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB file; the message says what to do."""


def _lost_init_race(exc: duckdb.Error) -> bool:
    """Whether ATTACH failed because another process was creating the same new catalog."""
    said = str(exc)
    return "Failed to initialize DuckLake" in said and (
        "already exists" in said or "duplicate key" in said
    )


def _named(text: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `text` names ($name): DuckDB refuses a value bound to none."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", text)}


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK, unless no transaction is left to end (a failed COMMIT ends its own): the error
    that made us roll back is the one to report, not "cannot rollback"."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


class SchemaTooNewError(RuntimeError):
    """The warehouse's schema is newer than this code: a worker of an older release must not
    write to it; the message names both versions."""


class WarehouseUnopenableError(OSError):
    """The file cannot be opened (not a DuckDB file, unreadable, a newer format); says why."""


class DataPathUnwritableError(WarehouseUnopenableError):
    """A DuckLake's s3:// data path refused a write; says which object."""


def _unopenable(said: str) -> str:
    """DuckDB's reason, and what to do when the file is from a newer DuckDB (2.x, this project's
    earlier releases): 1.5 cannot read it, an export and `warehouse.migrate` can."""
    if "version number" in said:
        return (
            f"{said} -- the file was written by a newer DuckDB (this project used DuckDB 2.0.1 "
            "before it moved to 1.5.5): export it with that DuckDB and copy it back with "
            "`python -m warehouse.migrate` (docs/operations.md 'DuckDB version')"
        )
    return said


def _probe_s3(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """An s3:// data path takes a write before anything else is written (a folder is probed
    by the caller with the OS): one small object, `.write-probe.csv`, overwritten by each
    probe. DuckDB cannot delete an object, so it stays; no table reads it."""
    target = lake.data_path.rstrip("/") + "/.write-probe.csv"
    try:
        con.sql("SELECT 1 AS probe").write_csv(target)
    except duckdb.Error as exc:
        raise DataPathUnwritableError(f"cannot write {target}: {exc}") from exc


# A process opens the same lake many times (a day's run: its check, its load, each model): the
# DuckDB database holding the lake's ATTACH is made once (its extensions loaded, the catalog
# attached: ~0.3 s of CPU each time) and each Warehouse takes a connection on it. The last few
# lakes are kept; one pushed out is freed when its last connection closes.
_LAKES: OrderedDict[tuple[str, str, bool, str | None], duckdb.DuckDBPyConnection] = OrderedDict()
_LAKES_KEPT = 2
_lakes_lock = threading.Lock()


def _lake_database(
    lake: Lake, read_only: bool, memory_limit: str | None
) -> duckdb.DuckDBPyConnection:
    """The process's DuckDB database with `lake` ATTACHed as `warehouse`, made on first use."""
    key = (lake.url, lake.data_path, read_only, memory_limit)
    with _lakes_lock:
        database = _LAKES.get(key)
        if database is not None:
            _LAKES.move_to_end(key)
            return database
        database = _attach_lake_database(lake, read_only, memory_limit)
        _LAKES[key] = database
        while len(_LAKES) > _LAKES_KEPT:
            # dropped, not closed (closing it would end its connections): the database is freed
            # when its last connection closes
            _LAKES.popitem(last=False)
        return database


def _attach_lake_database(
    lake: Lake, read_only: bool, memory_limit: str | None
) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,  # never download: the packages ship them
        "autoload_known_extensions": False,
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    config["temp_directory"] = temp_directory()
    con = duckdb.connect(":memory:", config=config)
    try:
        load_extensions(con, lake)
        con.execute(sql("lake_settings"))
        name = "attach_lake_read_only" if read_only else "attach_lake"
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                con.execute(attach_sql(name, lake.url, data_path=lake.data_path))
                break
            except duckdb.Error as exc:
                # runs opening a new catalog at once each create its tables: the losers attach
                # again once the winner's are committed
                if _lost_init_race(exc) and attempt < CONFLICT_RETRIES:
                    time.sleep(min(0.1 * 2**attempt, 5.0))  # backoff between attempts
                    continue
                raise WarehouseUnopenableError(
                    f"{lake.describe()} cannot be attached: {exc}"
                ) from exc
        if lake.on_s3 and not read_only:
            con.execute("USE warehouse")
            _probe_s3(con, lake)
    except BaseException:
        con.close()
        raise
    return con


# The lakes this process found up to date (or migrated), with the migrations it wanted: a later
# open of the same lake by the same code skips the schema_version queries (two catalog round
# trips each). Per process: a run is a process of its own (Dagster's default run launcher), so a
# lake another release migrates later is checked by that run's first open; the run's check
# before its first request reads schema_version again (`check_schema`) when its open did not.
# A DuckDB file is checked at every open (a local read, and another process may have replaced
# the file between two opens).
_MIGRATED: set[tuple[str, str, tuple[int, ...]]] = set()
_migrated_lock = threading.Lock()


# each stream's table -> the file counting its rows of a window (warehouse/sql/<table>_count.sql)
COUNT_FILES = {"calls": "calls_count", "alerts": "alerts_count"}


class Warehouse:
    """The DuckDB file, or a DuckLake. Opening applies the schema migrations idempotently.

    Args:
        path: the DuckDB file (its folder is created), or a `Lake` (warehouse/lake.py): its
            catalog and data path, ATTACHed as the same `warehouse` with the same tables.
        lock_timeout_s: how long to retry opening a file another process holds; in a lake, how
            long a window's load waits for another run's load of the same window.
        read_only: open for reading only (no migrations).
        memory_limit: DuckDB's memory_limit for this connection (None: DuckDB's default, 80% of
            RAM; see DEFAULT_MEMORY_LIMIT).
    """

    def __init__(
        self,
        path: str | Path | Lake,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        read_only: bool = False,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.lake = path if isinstance(path, Lake) else None
        self.path = Path(path.data_path if isinstance(path, Lake) else path)
        self.name = path.describe() if isinstance(path, Lake) else str(path)
        self.read_only = read_only
        self.memory_limit = memory_limit
        self.lock_timeout_s = lock_timeout_s
        # whether this connection read schema_version (a newer release's schema refused): at
        # opening for writing, unless this process already found the lake up to date
        self.schema_checked = False
        if self.lake is None and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con: duckdb.DuckDBPyConnection | None = (
            self._attach_lake(self.lake) if self.lake else self._connect(lock_timeout_s)
        )
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET enable_progress_bar = false")
            if not read_only:
                self._migrate()
        except BaseException:
            self.close()
            raise

    def _connect(self, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
        """ATTACH the file, waiting up to lock_timeout_s while another process holds it.

        While the kernel says the file is held, nothing is attached (locks.file_busy): the wait
        is a sleep between probes. Past the deadline one real attempt gets DuckDB's own word on
        the holder for the error.
        """
        deadline = time.monotonic() + lock_timeout_s
        delay = 0.05
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not locks.file_busy(self.path, write=not self.read_only):
                try:
                    return self._attach()
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise WarehouseUnopenableError(_unopenable(str(exc))) from exc
                    if left <= 0:
                        raise WarehouseLockedError(
                            f"The warehouse file {self.path} is locked by another process, "
                            f"{locks.lock_holder(exc)} (waited {lock_timeout_s:g} s). DuckDB "
                            "lets one process write a file at a time: another process holds "
                            "it, e.g. a Dagster run or a DuckDB CLI/notebook session. Close that "
                            "session (or wait for the run to finish) and retry; to read while "
                            "it runs, open a copy of the file, or open with read_only=True once "
                            f"no writer holds it. DuckDB said: {exc}"
                        ) from exc
            time.sleep(min(delay, max(left, 0.0)))  # between probes, not synchronization
            delay = min(delay * 2, 1.0)

    def _attach(self) -> duckdb.DuckDBPyConnection:
        """The file ATTACHed (as `warehouse`, then USE) to an in-memory connection: ATTACH takes
        ROW_GROUP_SIZE, duckdb.connect does not. Lock errors surface from the ATTACH."""
        config: dict[str, str | bool | int | float | list[str]] = {
            # flush a transaction's full row groups at once (the default buffers 5 of them)
            "write_buffer_row_group_count": 1,
        }
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        config["temp_directory"] = temp_directory()
        con = duckdb.connect(":memory:", config=config)
        try:
            attach = "attach_read_only" if self.read_only else "attach_read_write"
            con.execute(attach_sql(attach, str(self.path)))
            con.execute("USE warehouse")
        except BaseException:
            con.close()
            raise
        return con

    def _attach_lake(self, lake: Lake) -> duckdb.DuckDBPyConnection:
        """A connection on the DuckLake, ATTACHed as `warehouse` (then USE): no lock to wait
        for, readers and writers work on snapshots. A catalog that does not answer fails here,
        before any request. The DuckDB database that holds the ATTACH is shared by the process
        (`_lake_database`): each Warehouse is a connection of its own on it."""
        con = _lake_database(lake, self.read_only, self.memory_limit).cursor()
        try:
            con.execute(sql("lake_settings"))
            con.execute("USE warehouse")
        except BaseException:
            con.close()
            raise
        return con

    def _migrate(self) -> None:
        """Apply the migrations this warehouse lacks, each in its own transaction. In a lake,
        runs started together take turns on the catalog's migration lock, so the first applies
        them and the others find them applied; a schema newer than this code is refused."""
        wanted = migrations(lake=self.lake is not None)
        key = None
        if self.lake is not None:
            key = (self.lake.url, self.lake.data_path, tuple(v for v, _, _ in wanted))
            with _migrated_lock:
                if key in _MIGRATED:
                    return  # this process found it up to date: no catalog round trip
        if self._missing(wanted):
            if self.lake is None or self.lake.catalog != "postgres":
                # a DuckDB file (the warehouse, or a lake's catalog): its lock already makes
                # this process the only writer
                self._apply(wanted)
            else:
                with migration_lock(self.lake, self.lock_timeout_s):
                    self._apply(wanted)
        # up to date (the common case took no lock)
        if key is not None:
            with _migrated_lock:
                _MIGRATED.add(key)

    def _missing(self, wanted: list[tuple[int, str, str]]) -> bool:
        """Whether a migration is missing; SchemaTooNewError when the warehouse holds one this
        code does not know (written by a newer release)."""
        con = self.con
        try:
            con.execute(sql("schema_version_create"))
        except duckdb.TransactionException as exc:
            if not _is_conflict(exc):
                raise
            # another run created the table at the same moment: it is there now
        applied = {v for (v,) in con.execute(sql("schema_version_applied")).fetchall()}
        self._refuse_newer(applied, wanted)
        self.schema_checked = True
        return any(v not in applied for v, _, _ in wanted)

    def _refuse_newer(self, applied: set[int], wanted: list[tuple[int, str, str]]) -> None:
        known = max(v for v, _, _ in wanted)
        if applied and max(applied) > known:
            raise SchemaTooNewError(
                f"{self.name} has schema version {max(applied)}, newer than this release knows "
                f"(up to {known}): a newer release of jambonz-warehouse wrote it. Upgrade this "
                "worker to that release (uv sync from its uv.lock); an older release never "
                "writes to a newer schema"
            )

    def check_schema(self) -> None:
        """SchemaTooNewError when a newer release migrated this warehouse; works read-only, so a
        run can ask before its first request (a new, empty warehouse passes)."""
        try:
            rows = self.con.execute(sql("schema_version_applied")).fetchall()
        except duckdb.CatalogException:
            return  # nothing applied yet
        applied = {v for (v,) in rows}
        self._refuse_newer(applied, migrations(lake=self.lake is not None))
        self.schema_checked = True

    def _apply(self, wanted: list[tuple[int, str, str]]) -> None:
        con = self.con
        applied = {v for (v,) in con.execute(sql("schema_version_applied")).fetchall()}
        for version, name, ddl in wanted:
            if version in applied:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(ddl)
                con.execute(sql("schema_version_insert"), {"version": version, "name": name})
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con)  # a failed COMMIT already ended it: the error is the cause
                if isinstance(exc, duckdb.TransactionException) and _is_conflict(exc):
                    raise WarehouseConflictError(
                        f"{self.name}: migration {version:03d}_{name} lost a commit race to "
                        f"another writer ({exc}); opening again finds it applied"
                    ) from exc
                raise

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError(f"the warehouse {self.name} is closed")
        return self._con

    def check(
        self,
        name: str,
        *,
        start: datetime,
        end: datetime,
        day: date | None = None,
        tz: str = "UTC",
    ) -> CheckOutcome:
        """Run the data check warehouse/checks/{name}.sql over [start, end).

        Its one row is (violations, sample), and for a check that names what it found group by
        group a third column `flagged` (a list of structs: CheckOutcome.metadata["flagged"]).
        Only the parameters the check names are bound (DuckDB refuses others).
        """
        text = sql(name, "checks")
        given: dict[str, object] = {"start": start, "end": end, "day": day, "tz": tz}
        params = _named(text, given)
        # fetchall: DuckDB 2 refuses new work on a connection with an unfinished result.
        ((violations, sample, *flagged),) = self.con.execute(text, params).fetchall()
        metadata = {"flagged": list(flagged[0] or [])} if flagged else {}
        return CheckOutcome(name, int(violations or 0), [str(s) for s in (sample or [])], metadata)

    def report(self, name: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of the read-only query warehouse/reports/{name}.sql."""
        cur = self.con.execute(sql(name, "reports"), params)
        columns = [d[0] for d in cur.description or []]
        return columns, cur.fetchall()

    def summary(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The one row of warehouse/sql/{name}.sql as {column: value}."""
        cur = self.con.execute(sql(name), params)
        columns = [d[0] for d in cur.description or []]
        ((*values,),) = cur.fetchall()
        return dict(zip(columns, values, strict=True))

    def rows(
        self,
        name: str,
        params: dict[str, Any],
        *,
        folder: str = "sql",
        tables: dict[str, pa.Table] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of warehouse/{folder}/{name}.sql as {column: value}; only the parameters the
        file names are bound, and `tables` (Arrow) are registered by name for the query only."""
        text = sql(name, folder)
        bound = _named(text, params)
        con = self.con
        for table_name, table in (tables or {}).items():
            con.register(table_name, table)
        try:
            cur = con.execute(text, bound)
            columns = [d[0] for d in cur.description or []]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        finally:
            for table_name in tables or {}:
                con.unregister(table_name)

    def query(self, name: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run warehouse/sql/{name}.sql with bound params; works on a read-only warehouse."""
        return self.con.execute(sql(name), params or {}).fetchall()

    def count_calls(
        self,
        window_start: datetime,
        window_end: datetime,
        account_sid: str | None = None,
        *,
        table: str = "calls",
    ) -> int:
        """Calls attempted in [window_start, window_end) (rows of a stream's `table` in it), of
        one account when given."""
        rows = self.query(
            COUNT_FILES[table],
            {"window_start": window_start, "window_end": window_end, "account_sid": account_sid},
        )
        return int(rows[0][0])

    def forget_window(self) -> None:
        """Drop the last window load's keys (kept for the completeness check), once its checks
        are done: on a connection that goes on to other work they would only take memory (or
        spill)."""
        self.con.execute(sql("window_keys_drop"))

    def window_load(
        self, *, window_start: datetime, window_end: datetime, table: str = "calls"
    ) -> WindowLoad:
        """A transaction loading one window of a stream's `table` in several batches (see
        WindowLoad)."""
        lock = None
        if self.lake is not None and self.lake.catalog == "postgres":
            lock = window_lock(self.lake, window_start, self.lock_timeout_s)
        # on S3, DuckDB's upload of a Parquet file takes a buffer of ~77 MB: the load keeps the
        # connection's limit there
        on_s3 = self.lake is not None and self.lake.on_s3
        return WindowLoad(
            self.con,
            window_start,
            window_end,
            lock,
            self.memory_limit,
            load_memory_limit=None if on_s3 else LOAD_MEMORY_LIMIT,
            table=table,
        )

    def maintain(self, *, snapshot_retention: timedelta, file_grace: timedelta) -> dict[str, int]:
        """DuckLake's upkeep (warehouse/lake.py maintain); a DuckDB file has none."""
        if self.lake is None:
            raise RuntimeError(f"{self.name} is a DuckDB file: maintenance is for a DuckLake")
        return lake_maintain(self.con, snapshot_retention=snapshot_retention, file_grace=file_grace)

    def rebuild_model(
        self,
        name: str,
        *,
        day: date,
        tz: str,
        window_start: datetime,
        window_end: datetime,
        tables: dict[str, pa.Table] | None = None,
    ) -> int:
        """Replace one day's rows of model `name` (warehouse/models/{name}.sql); returns rows.

        The day's rows are deleted and the model's query inserted, in one transaction; the query
        reads only calls attempted in [window_start, window_end) (the caller's UTC bounds of
        `day` in `tz`). `name` is an identifier checked against the model files, not a value.
        `tables`: Arrow tables the model's query reads by name (destinations_daily's
        far_end_countries), registered on the connection for the rebuild only.
        """
        if name not in model_names():
            raise KeyError(f"no model {name!r}; known: {', '.join(model_names())}")
        select = sql(name, "models")
        params: dict[str, Any] = {
            "tz": tz,
            "day": day,
            "window_start": window_start,
            "window_end": window_end,
        }
        con = self.con
        for table_name, table in (tables or {}).items():
            con.register(table_name, table)
        row = None
        try:
            for attempt in range(CONFLICT_RETRIES + 1):
                con.execute("BEGIN TRANSACTION")
                try:
                    # the day's status (calls_day_syncs) as the rows' `complete`; a day synced
                    # before calls_day_syncs existed has no row and counts as complete
                    status = con.execute(sql("calls_day_syncs_complete"), {"day": day})
                    done = status.fetchone()
                    params["complete"] = done is None or done[0] is None or bool(done[0])
                    delete = f'DELETE FROM "{name}" WHERE day = $day'  # noqa: S608
                    con.execute(delete, {"day": day})
                    insert = f'INSERT INTO "{name}" BY NAME {select}'
                    row = con.execute(insert, _named(select, params)).fetchone()
                    con.execute("COMMIT")
                    break
                except duckdb.TransactionException as exc:
                    with contextlib.suppress(duckdb.TransactionException):
                        con.execute("ROLLBACK")
                    # a DuckLake run rebuilt the same table meanwhile: the day is redone on the
                    # new snapshot (DuckLake does not retry a delete that raced an insert)
                    if not _is_conflict(exc) or attempt == CONFLICT_RETRIES:
                        raise
                    time.sleep(min(0.2 * 2**attempt, 10.0))  # backoff between attempts
                except BaseException:
                    with contextlib.suppress(duckdb.TransactionException):
                        con.execute("ROLLBACK")
                    raise
        finally:  # the tables were the rebuild's only
            for table_name in tables or {}:
                con.unregister(table_name)
        return int(row[0]) if row else 0
