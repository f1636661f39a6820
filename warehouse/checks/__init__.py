"""Data checks over the warehouse, one SQL file each, run per day window (Warehouse.check).

Each file returns one row: (violations BIGINT, sample VARCHAR[]), with values bound as
parameters ($start, $end: the window's UTC bounds; $day and $tz for the models). Zero violations
means the check passed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    violations: int
    sample: list[str]

    @property
    def passed(self) -> bool:
        return self.violations == 0
