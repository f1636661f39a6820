"""API records (either dialect) -> rows of the `calls` table, or rejections.

CONTRACT SKELETON: the public surface below is what the client, the Dagster layer and the tests use.

Columnar where it matters: this is the hot path of a sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

SURROGATE_PREFIX = "nosid:"


def record_identity(record: dict[str, Any]) -> str:
    """The key a record will have in `calls` (call_key), computed cheaply from the raw record.

    call_sid when present; else SURROGATE_PREFIX + a hash of sip_callid (or sip_call_id),
    direction and attempted_at truncated to whole seconds (so both dialects agree); for a record
    with neither, a hash of its canonical JSON (it will be quarantined, but stays distinct).
    """
    raise NotImplementedError


@dataclass
class Normalized:
    """One window's records, normalized."""

    calls: pa.Table  # schema warehouse.tables.CALLS_SCHEMA, synced_at filled with `synced_at`
    raw: pa.Table  # call_key, attempted_at, payload (the record's JSON text) for rows in `calls`
    quarantine: pa.Table  # rejected records: see warehouse.load for its schema


def normalize(
    records: list[dict[str, Any]],
    *,
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
) -> Normalized:
    raise NotImplementedError
