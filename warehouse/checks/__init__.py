"""Data checks over the warehouse, one SQL file each, run per day window (Warehouse.check).

Each file returns one row: (violations BIGINT, sample VARCHAR[]), with values bound as
parameters ($start, $end: the window's UTC bounds; $day and $tz for the models). Zero violations
means the check passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    violations: int
    sample: list[str]
    # more for the check's result, JSON-able: a WARN check's `flagged` groups (their `group`
    # key and figures), what it compared and skipped (pipelines/notify.py sends the flagged)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.violations == 0
