"""Upsert one window's Arrow tables into the DuckDB file, in one transaction.

CONTRACT SKELETON: the public surface below is what the Dagster layer and the tests use.

No PRIMARY KEY: the delete of changed rows is scoped by the window's attempted_at range and the
batch's keys together, so loading one day costs the same into 1M or 30M rows. Never deletes a call
the API no longer returns. Knows nothing of HTTP or Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class LoadResult:
    inserted: int
    updated: int
    unchanged: int
    quarantined: int  # quarantine rows new to the table in this load


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB file; the message says what to do."""


class Warehouse:
    """The DuckDB file. Opening applies the schema migrations idempotently.

    Args:
        path: the DuckDB file (its folder is created).
        lock_timeout_s: how long to retry opening a file another process holds.
        read_only: open for reading only (no migrations).
    """

    def __init__(
        self, path: str | Path, *, lock_timeout_s: float = 60.0, read_only: bool = False
    ) -> None:
        raise NotImplementedError

    def __enter__(self) -> Warehouse:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def load_window(
        self,
        calls: pa.Table,
        raw: pa.Table,
        quarantine: pa.Table,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> LoadResult:
        """Upsert calls (+ raw payloads) and append new quarantine rows, in one transaction."""
        raise NotImplementedError

    def rebuild_model(
        self, name: str, *, day: date, tz: str, window_start: datetime, window_end: datetime
    ) -> int:
        """Replace one day's rows of model `name` (warehouse/models/{name}.sql); returns rows."""
        raise NotImplementedError
