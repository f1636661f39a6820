"""The DuckLake lane: the warehouse's tables in a DuckLake (catalog in PostgreSQL, Parquet data).

`WAREHOUSE_URL=ducklake:postgres:<libpq conninfo>` chooses it; `WAREHOUSE_DATA_PATH` is where the
Parquet files go. The catalog's password never appears in the URL: libpq reads it from
PGPASSWORD or PGPASSFILE, so no log line, error or run config can carry it (a conninfo naming
`password` is refused). The ducklake and postgres extensions are LOADed from the registry's
Python packages (duckdb-extension-ducklake, -postgres-scanner): DuckDB never downloads one.

What it must never do: write a byte before the catalog and the data path have answered, or let a
commit that lost a race to another writer surface as a failed run while DuckLake can retry it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from warehouse.sql_files import sql

PREFIX = "ducklake:"
# catalogs this code attaches: the URL's word -> the extension it needs besides ducklake. Both
# are tested; `duckdb` (a local DuckDB file as the catalog, one process at a time) is for trials.
CATALOGS = {"postgres": "postgres_scanner", "duckdb": None}
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",  # an s3:// data path
}
S3 = "s3://"
# DuckLake's own retry of a commit that raced another writer is raised from its defaults (10
# tries) to 100, as teams with several writers do: warehouse/sql/lake_settings.sql.
_KEYWORD = re.compile(r"(?:^|\s)([A-Za-z_]+)\s*=")


class LakeLockError(RuntimeError):
    """A window's lock in the lake's catalog was not granted in time, or could not be asked."""


class LakeUrlError(ValueError):
    """WAREHOUSE_URL cannot be a DuckLake; the message says why, without the URL's secrets."""


@dataclass(frozen=True)
class Lake:
    """A parsed WAREHOUSE_URL: the catalog kind and its connection text."""

    catalog: str
    conninfo: str
    data_path: str

    @property
    def url(self) -> str:
        return f"{PREFIX}{self.catalog}:{self.conninfo}"

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith(S3)

    def describe(self) -> str:
        """For logs and errors: the catalog and data path (the conninfo holds no password)."""
        return f"DuckLake {self.catalog}:{self.conninfo} (data {self.data_path})"


def is_lake(url: str | None) -> bool:
    return bool(url) and str(url).startswith(PREFIX)


def parse(url: str, data_path: str | None) -> Lake:
    """WAREHOUSE_URL and WAREHOUSE_DATA_PATH as a Lake, or LakeUrlError naming the variable."""
    if not url.startswith(PREFIX):
        raise LakeUrlError(f"WAREHOUSE_URL must start with {PREFIX!r}")
    catalog, sep, conninfo = url[len(PREFIX) :].partition(":")
    if not sep or catalog not in CATALOGS:
        raise LakeUrlError(
            f"WAREHOUSE_URL names catalog {catalog!r}; expected one of "
            f"{', '.join(f'{PREFIX}{c}:...' for c in CATALOGS)}"
        )
    if not conninfo.strip():
        raise LakeUrlError(f"WAREHOUSE_URL={PREFIX}{catalog}: has no connection string after it")
    if catalog == "postgres":
        keys = {k.lower() for k in _KEYWORD.findall(conninfo)}
        if "password" in keys or re.search(r"//[^/@]*:[^/@]*@", conninfo):
            raise LakeUrlError(
                "WAREHOUSE_URL must not hold the catalog's password: give it to libpq through "
                "PGPASSWORD or PGPASSFILE (docs/lake.md 'The DuckLake lane')"
            )
    if "\n" in conninfo or "\x00" in conninfo:
        raise LakeUrlError("WAREHOUSE_URL holds a newline")
    if not data_path or not data_path.strip():
        raise LakeUrlError("WAREHOUSE_DATA_PATH is required with a DuckLake WAREHOUSE_URL")
    data_path = data_path.strip()
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", data_path)
    if scheme and not data_path.startswith(S3):
        raise LakeUrlError(
            f"WAREHOUSE_DATA_PATH is a {scheme.group(1)}:// URL; expected a folder or an s3:// URL"
        )
    return Lake(catalog, conninfo.strip(), data_path)


def extension_file(name: str) -> str:
    """The .duckdb_extension file the registry's package ships for this DuckDB version."""
    package = EXTENSION_PACKAGES[name]
    version = f"v{duckdb.__version__}"
    try:
        path = importlib.resources.files(package).joinpath("extensions", version)
    except ModuleNotFoundError:
        raise RuntimeError(
            f"the {name} extension needs the Python package {package.replace('_', '-')} "
            f"(pyproject.toml installs it)"
        ) from None
    file = path.joinpath(f"{name}.duckdb_extension")
    if not file.is_file():
        raise RuntimeError(f"{package} ships no {name} extension for DuckDB {version}")
    return str(file)


def load_extensions(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """LOAD ducklake (and the catalog's and data path's extensions) from the packages' files,
    never downloaded; for an s3:// data path, the connection's S3 secret too."""
    needed = [n for n in (CATALOGS[lake.catalog], "httpfs" if lake.on_s3 else None, "ducklake")]
    for name in needed:
        if name:
            con.load_extension(extension_file(name))
    if lake.on_s3:
        con.execute(sql("lake_s3_secret"), s3_credentials())


def s3_credentials() -> dict[str, str]:
    """The S3 secret's values from the AWS SDK's own variables (bound, never in SQL text or a
    log). AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points at an S3-compatible server such as
    MinIO; it is addressed path-style, and over TLS unless the URL says http://."""
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    scheme, _, host = endpoint.rpartition("://")
    return {
        "key_id": env.get("AWS_ACCESS_KEY_ID", ""),
        "secret": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "session_token": env.get("AWS_SESSION_TOKEN", ""),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "endpoint": host.rstrip("/") or "s3.amazonaws.com",
        "url_style": "path" if endpoint else "vhost",
        "use_ssl": "false" if scheme == "http" else "true",
    }


# (step, needs $before): the order of DuckLake's own CHECKPOINT, each its own statement so a
# failure names its step (warehouse/sql/lake_<step>.sql)
MAINTENANCE_STEPS = (
    ("flush_inlined_data", False),
    ("merge_adjacent_files", False),
    ("rewrite_data_files", False),
    ("expire_snapshots", True),
    ("cleanup_old_files", True),
    ("delete_orphaned_files", True),
)


CONFLICT_RETRIES = 8  # a maintenance step redone after a concurrent commit, backing off to 30 s


@contextlib.contextmanager
def window_lock(lake: Lake, window_start: datetime, timeout_s: float) -> Iterator[None]:
    """Hold the lake's lock on one window while it loads: two runs of the same day take turns.

    DuckLake lets two transactions insert into one table at once (it checks conflicts per
    table, and inserts never conflict), so two runs loading the same day at once would each
    insert the calls the other could not see yet: every call twice. A PostgreSQL advisory lock
    in the catalog's database, keyed by the window, makes the second wait for the first's commit
    (then it finds every call there and changes nothing). Runs of different days take different
    locks and load side by side.
    """
    busy = (
        f"another run has been loading the window from {window_start.isoformat()} "
        f"for over {timeout_s:.0f} s (its lock is in the catalog's PostgreSQL)"
    )
    with advisory_lock(lake, f"jambonz-warehouse {window_start.isoformat()}", timeout_s, busy):
        yield


@contextlib.contextmanager
def migration_lock(lake: Lake, timeout_s: float) -> Iterator[None]:
    """Hold the lake's lock on its schema while migrations are applied: runs started together on
    a new or upgraded lake apply them once, the first to come; the others wait, then find them
    applied. (Without it each would CREATE the same table and all but one lose DuckLake's commit
    race.)"""
    busy = f"another run has been migrating the lake's schema for over {timeout_s:.0f} s"
    with advisory_lock(lake, "jambonz-warehouse schema migrations", timeout_s, busy):
        yield


@contextlib.contextmanager
def advisory_lock(lake: Lake, name: str, timeout_s: float, busy: str) -> Iterator[None]:
    """A PostgreSQL session-level advisory lock in the catalog's database, keyed by `name`,
    waited for at most timeout_s (then LakeLockError saying `busy`). Like the DuckDB file's lock
    it belongs to a session: a killed run's connection closes and the lock goes with it. The
    SQL: warehouse/sql/lake_advisory_lock.sql."""
    import psycopg2  # the catalog's driver (libpq: PGPASSWORD/PGPASSFILE), lake lane only

    digest = hashlib.blake2b(name.encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    try:
        conn = psycopg2.connect(lake.conninfo)
    except psycopg2.Error as exc:
        raise LakeLockError(f"{lake.describe()}: the catalog refused a connection: {exc}") from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            try:
                params = {"timeout_ms": int(timeout_s * 1000), "key": key}
                cur.execute(_pyformat(sql("lake_advisory_lock")), params)
            except psycopg2.errors.LockNotAvailable:
                raise LakeLockError(busy) from None
        yield
    finally:
        conn.close()  # the session ends: its advisory lock is released with it


def _pyformat(statement: str) -> str:
    """A .sql file's `$name` parameters as psycopg2 binds them (`%(name)s`); comments dropped."""
    lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
    return re.sub(r"\$([a-z_]+)", r"%(\1)s", "\n".join(lines).replace("%", "%%"))


def files(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The lake's file and snapshot counts (warehouse/sql/lake_files.sql)."""
    cur = con.execute(sql("lake_files"))
    names = [d[0] for d in cur.description or []]
    ((*values,),) = cur.fetchall()
    return {n: int(v) for n, v in zip(names, values, strict=True)}


def maintain(
    con: duckdb.DuckDBPyConnection, *, snapshot_retention: timedelta, file_grace: timedelta
) -> dict[str, int]:
    """Compact, expire and clean the lake attached as `warehouse`; the counts before and after.

    snapshot_retention: snapshots older are expired (time travel reaches that far back).
    file_grace: files unreferenced for longer are deleted (a reader on an older snapshot has that
    long to finish). Both are measured when their step runs.
    """
    before = files(con)
    for step, timed in MAINTENANCE_STEPS:
        age = snapshot_retention if step == "expire_snapshots" else file_grace
        for attempt in range(CONFLICT_RETRIES + 1):
            params = {"before": datetime.now(UTC) - age} if timed else {}
            try:
                con.execute(sql(f"lake_{step}"), params).fetchall()
                break
            except duckdb.TransactionException as exc:
                # a run committed to the same table meanwhile: DuckLake does not retry a
                # compaction; the step is redone on the new snapshot
                if "conflict" not in str(exc).lower() or attempt == CONFLICT_RETRIES:
                    raise
                time.sleep(min(0.5 * 2**attempt, 30.0))  # backoff between attempts
    after = files(con)
    return {**{f"{k}_before": v for k, v in before.items()}, **after}
