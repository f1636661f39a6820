"""Shortcuts the tests take through the production path, kept out of its API.

Production streams a window (JambonzClient.stream_window) into one transaction
(Warehouse.window_load); a test often wants a window's records in one list, or one batch loaded
and committed at once. And the README's SQL recipes, which tests run as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.jambonz.pager import JambonzClient, WindowResult
from pipelines.jambonz.streams import (
    RECENT_CALLS,
    REQUIRED_KEYS,
    Scope,
    Stream,
    Window,
    from_dicts,
    parse_times,
    whole,
)
from pipelines.normalize import Normalized, normalize
from pipelines.settings import REPO_ROOT
from pipelines.sync import SyncResult, load_stream
from warehouse.database import Warehouse
from warehouse.load import LoadResult


@dataclass(kw_only=True)
class Fetched(WindowResult):
    records: list[dict[str, Any]]  # every record of the window, as json.loads gives them


def record_identity(record: dict[str, Any]) -> str:
    """A RecentCalls record's call_key, by the stream's own rule, from the record alone."""
    instant = parse_times([record.get("attempted_at")]).cast(pa.int64())[0].as_py()
    return RECENT_CALLS.identity(record, instant)


def fetch_window(client: JambonzClient, scope: Scope, window: Window) -> Fetched:
    """Every call of the window in one list of dicts, as json.loads would give them (absent
    unknown keys left out), with the window's result."""
    stream = client.stream_window(scope, window)
    records = [
        {k: whole(v) for k, v in part.record(i, REQUIRED_KEYS).items()}
        for part in stream
        for i in range(len(part))
    ]
    assert stream.result is not None
    return Fetched(**vars(stream.result), records=records)


def sync_window(
    client: JambonzClient,
    wh: Warehouse,
    scope: Scope,
    window: Window,
    *,
    synced_at: datetime,
    **options: Any,
) -> SyncResult:
    """Fetch, normalize and load one window into an open warehouse (pipelines.sync)."""
    stream = client.stream_window(scope, window)
    return load_stream(stream, lambda: wh, scope, window, synced_at=synced_at, **options)


def normalize_dicts(
    records: list[dict[str, Any]], stream: Stream = RECENT_CALLS, **where: Any
) -> Normalized:
    """Records as json.loads gives them, normalized (synced_at, scope_sid, window_start,
    window_end as for pipelines.normalize.normalize)."""
    return normalize(from_dicts(stream, records), stream=stream, **where)


def load_window(
    wh: Warehouse,
    calls: pa.Table,
    raw: pa.Table,
    quarantine: pa.Table,
    *,
    window_start: datetime,
    window_end: datetime,
    table: str = "calls",
) -> LoadResult:
    """One batch upserted and committed as a window's only batch (Warehouse.window_load)."""
    with wh.window_load(window_start=window_start, window_end=window_end, table=table) as load:
        load.add(calls, raw, quarantine)
    return load.result()


def readme_sql() -> list[str]:
    """Every statement of the README's ```sql blocks (its recipes for the people who query)."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```sql\n")[1:]]
    return [s.strip() for b in blocks for s in b.split(";") if s.strip()]
