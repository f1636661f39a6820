"""Copy a whole warehouse into a new one, and prove the copy equal, table by table.

    python -m warehouse.migrate --from var/warehouse.duckdb --to "$WAREHOUSE_URL"
    python -m warehouse.migrate --from var/export --to var/warehouse.duckdb
    python -m warehouse.migrate --upgrade [--to TARGET]   # only the schema, as a deploy step

The source is a warehouse file this DuckDB reads, or the folder that DuckDB 2.x's
`EXPORT DATABASE '<folder>' (FORMAT parquet)` wrote from an older file (docs/operations.md
"DuckDB version": DuckDB 1.5 cannot open a file DuckDB 2.0 wrote). The target is a new DuckDB
file, or a DuckLake (`ducklake:postgres:<conninfo>`, its data path from --data-path or
WAREHOUSE_DATA_PATH, its password from PGPASSWORD or PGPASSFILE). The target gets the schema of
this code (the migrations) and every row of every data table in one transaction; then each table
is compared both ways (EXCEPT ALL: the same rows, duplicates counted) and the command says what
it found. It refuses a target that already holds rows, and never writes to the source.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.database import (
    SchemaTooNewError,
    Warehouse,
    WarehouseLockedError,
    WarehouseUnopenableError,
)
from warehouse.lake import Lake, LakeLockError, LakeUrlError, is_lake
from warehouse.lake import parse as parse_lake
from warehouse.sql_files import attach, migrations, model_names, sql

# every table that holds data, in load order; schema_version belongs to the target's migrations
TABLES: tuple[str, ...] = (
    "calls",
    "calls_raw",
    "calls_quarantine",
    "calls_day_syncs",
    "alerts",
    "alerts_raw",
    "alerts_quarantine",
    *model_names(),
)


class MigrateError(RuntimeError):
    """The copy cannot start or did not come out equal; the message says which table and why."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def _source(source: Path, table: str) -> tuple[str, dict[str, object]]:
    """A FROM clause reading `table` of the source, and its parameters. `table` is a name from
    TABLES (a closed list), never a value."""
    if table not in TABLES:
        raise KeyError(table)
    if source.is_dir():
        return "read_parquet($file)", {"file": str(source / f"{table}.parquet")}
    return f"src.main.{table}", {}


def _rows(wh: Warehouse, table: str) -> int:
    if table not in TABLES:  # an identifier from the closed list, never a value
        raise KeyError(table)
    ((rows,),) = wh.con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows)


def migrate(source: Path, target: Path | Lake) -> list[Copied]:
    """Copy every table of `source` into the new warehouse `target`, then verify them equal."""
    if not source.exists():
        raise MigrateError(f"--from {source}: no such file or folder")
    if source.is_dir():
        missing = [t for t in TABLES[:3] if not (source / f"{t}.parquet").is_file()]
        if missing:
            raise MigrateError(
                f"--from {source}: not an EXPORT DATABASE (FORMAT parquet) folder of a warehouse "
                f"(no {', '.join(f'{t}.parquet' for t in missing)})"
            )
    if isinstance(target, Path) and source.resolve() == target.resolve():
        raise MigrateError("--from and --to are the same file")
    name = target.describe() if isinstance(target, Lake) else str(target)
    with Warehouse(target) as wh:
        con = wh.con
        held = {t: _rows(wh, t) for t in TABLES}
        if any(held.values()):
            busy = ", ".join(f"{t} ({n:,} rows)" for t, n in held.items() if n)
            raise MigrateError(f"--to {name} already holds data: {busy}; nothing was copied")
        if source.is_file():
            con.execute(attach("attach_source", str(source)))
            there = {name for (name,) in con.execute(sql("source_tables")).fetchall()}
            present = [t for t in TABLES if t in there]
        else:
            present = [t for t in TABLES if (source / f"{t}.parquet").is_file()]
        # a source from an older release lacks the newer tables (alerts) and columns (cost): its
        # own columns are copied and compared, the newer ones are the target's to fill
        columns = {}
        for table in present:
            relation, params = _source(source, table)
            cur = con.execute(f"SELECT * FROM {relation} LIMIT 0", params)
            columns[table] = ", ".join(f'"{d[0]}"' for d in cur.description or [])
        con.execute("BEGIN TRANSACTION")
        try:
            for table in present:
                relation, params = _source(source, table)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {relation}", params)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.TransactionException):  # a failed COMMIT ended it
                con.execute("ROLLBACK")
            raise
        copied = []
        for table in present:
            relation, params = _source(source, table)
            own = columns[table]
            diff = (
                f"SELECT count(*) FROM (SELECT {own} FROM {relation} "
                f"EXCEPT ALL SELECT {own} FROM {table})"
            )
            back = (
                f"SELECT count(*) FROM (SELECT {own} FROM {table} "
                f"EXCEPT ALL SELECT {own} FROM {relation})"
            )
            ((only_source,),) = con.execute(diff, params).fetchall()
            ((only_target,),) = con.execute(back, params).fetchall()
            if only_source or only_target:
                raise MigrateError(
                    f"{table} differs after the copy: {only_source} rows only in the source, "
                    f"{only_target} only in the target"
                )
            copied.append(Copied(table, _rows(wh, table)))
        if "cost" not in columns.get("calls", "cost"):
            # calls of a release before 011: their costs were left in `extra`; move them as the
            # migration does for a warehouse upgraded in place (its statements are idempotent)
            con.execute(next(ddl for v, _, ddl in migrations() if v == 11))
    return copied


def upgrade(target: Path | Lake) -> str:
    """Apply the migrations `target` lacks (in a lake, under its migration lock, as a run
    would); what it holds now."""
    with Warehouse(target) as wh:
        versions = [v for (v,) in wh.con.execute(sql("schema_version_applied")).fetchall()]
        return f"{wh.name}: schema up to date (version {max(versions)}, {len(versions)} migrations)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warehouse.migrate", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--from", dest="source", type=Path)
    parser.add_argument("--to", dest="target", help="a new file or ducklake:...")
    parser.add_argument("--data-path", default=os.environ.get("WAREHOUSE_DATA_PATH"))
    parser.add_argument(
        "--upgrade",
        action="store_true",
        help="only bring the warehouse --to names (default: WAREHOUSE_URL, else WAREHOUSE_PATH) "
        "up to this release's schema, copying nothing: a deploy step",
    )
    args = parser.parse_args(argv)
    if args.upgrade:
        args.target = (
            args.target
            or os.environ.get("WAREHOUSE_URL")
            or os.environ.get("WAREHOUSE_PATH", "var/warehouse.duckdb")
        )
    elif args.source is None or args.target is None:
        parser.error("--from and --to are required (or --upgrade)")
    try:
        target: Path | Lake = Path(args.target)
        if is_lake(args.target):
            target = parse_lake(args.target, args.data_path)
        if args.upgrade:
            print(upgrade(target))
            return 0
        copied = migrate(args.source, target)
    except LakeUrlError as exc:
        print(f"migrate: --to: {exc}", file=sys.stderr)
        return 2
    except (
        MigrateError,
        WarehouseLockedError,
        WarehouseUnopenableError,
        SchemaTooNewError,
        LakeLockError,
    ) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    except duckdb.IOException as exc:
        hint = ""
        if "version number" in str(exc):
            hint = (
                " (a file written by a newer DuckDB, such as 2.x: export it with that DuckDB "
                'first and migrate from the folder; docs/operations.md "DuckDB version")'
            )
        print(
            f"migrate: cannot read --from {args.source}{hint}. DuckDB said: {exc}", file=sys.stderr
        )
        return 2
    for c in copied:
        print(f"{c.table:<22} {c.rows:>12,} rows  equal")
    print(f"warehouse: {target.describe() if isinstance(target, Lake) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
