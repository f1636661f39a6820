"""Read-only report queries over the warehouse, one SQL file each, values bound as parameters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

_DIR = Path(__file__).parent


def run_report(
    con: duckdb.DuckDBPyConnection, name: str, *, start: datetime, end: datetime
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of report `name` over calls attempted in [start, end)."""
    cur = con.execute((_DIR / f"{name}.sql").read_text(), {"start": start, "end": end})
    columns = [d[0] for d in cur.description or []]
    return columns, cur.fetchall()
