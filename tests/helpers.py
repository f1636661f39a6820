"""Shortcuts the tests take through the production path, kept out of its API.

Production streams a window (RecentCallsClient.stream_window) into one transaction
(Warehouse.window_load); a test often wants a window's records in one list, or one batch loaded
and committed at once. And the README's SQL recipes, which tests run as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.jambonz.client import RecentCallsClient, Scope, Window, WindowResult
from pipelines.jambonz.records import KNOWN_KEYS, whole
from pipelines.settings import REPO_ROOT
from warehouse.load import LoadResult, Warehouse


def fetch_window(client: RecentCallsClient, scope: Scope, window: Window) -> WindowResult:
    """Every call of the window in one list of dicts, as json.loads would give them (absent
    unknown keys left out), in the result's `records`."""
    stream = client.stream_window(scope, window)
    records: list[dict[str, Any]] = []
    for batch in stream:
        for rows in batch.tables:
            records.extend(
                {k: whole(v) for k, v in r.items() if k in KNOWN_KEYS or v is not None}
                for r in rows.table.to_pylist()
            )
        records.extend(batch.records)
    assert stream.result is not None
    stream.result.records = records
    return stream.result


def load_window(
    wh: Warehouse,
    calls: pa.Table,
    raw: pa.Table,
    quarantine: pa.Table,
    *,
    window_start: datetime,
    window_end: datetime,
) -> LoadResult:
    """One batch upserted and committed as a window's only batch (Warehouse.window_load)."""
    with wh.window_load(window_start=window_start, window_end=window_end) as load:
        load.add(calls, raw, quarantine)
    return load.result()


def readme_sql() -> list[str]:
    """Every statement of the README's ```sql blocks (its recipes for the people who query)."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```sql\n")[1:]]
    return [s.strip() for b in blocks for s in b.split(";") if s.strip()]
