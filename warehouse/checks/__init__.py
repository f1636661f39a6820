"""Data checks over the warehouse, one SQL file each, run per day window.

Each file returns one row: (violations BIGINT, sample VARCHAR[]), with values bound as
parameters ($start, $end: the window's UTC bounds; $day and $tz for the models). Zero violations
means the check passed. Knows DuckDB only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

_DIR = Path(__file__).parent


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    violations: int
    sample: list[str]

    @property
    def passed(self) -> bool:
        return self.violations == 0


def check_names() -> list[str]:
    return sorted(p.stem for p in _DIR.glob("*.sql"))


def run_check(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    start: datetime,
    end: datetime,
    day: date | None = None,
    tz: str = "UTC",
) -> CheckOutcome:
    sql = (_DIR / f"{name}.sql").read_text()
    given: dict[str, object] = {"start": start, "end": end, "day": day, "tz": tz}
    # DuckDB refuses parameters a statement does not name: bind only the ones it uses.
    params = {k: v for k, v in given.items() if f"${k}" in sql}
    # fetchall: DuckDB 2 refuses new work on a connection with an unfinished result.
    ((violations, sample),) = con.execute(sql, params).fetchall()
    return CheckOutcome(name, int(violations or 0), [str(s) for s in (sample or [])])
