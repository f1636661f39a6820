"""One window synced: its stream's records normalized and upserted, in one transaction. No Dagster.

This is the code path of the `calls` asset (pipelines/calls.py wraps it with metadata and checks)
and of the benchmarks, which run it outside Dagster. It joins the two systems and knows neither's
internals: the pager streams the window's records as Arrow (pipelines/jambonz/pager.py), one
thread turns each chunk into rows (pipelines/normalize.py), another upserts them
(warehouse/load.py), all chunks inside one transaction.

Memory is bounded by the chunk, not the day: a chunk is normalized and written away behind the
stream (Arrow and DuckDB work outside the GIL, so both overlap fetching the next chunk); what is
kept for the whole window is the identities the client dedupes against (hashed: 8 B a call).
DuckDB's share is bounded by the load's memory_limit (64MB, warehouse.load.LOAD_MEMORY_LIMIT):
the rows it has written, and the keys the completeness check reads after COMMIT, are evicted or
spilled.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any

from pipelines.jambonz.pager import WindowResult, WindowStream
from pipelines.jambonz.streams import RECENT_CALLS, Records, Scope, Stream, Window
from pipelines.normalize import Normalized, normalize
from warehouse.database import Warehouse
from warehouse.load import LoadResult, WindowLoad

# Records normalized and loaded at once: bounds memory (up to five chunks are in flight: gathered,
# queued, normalizing, queued, writing), amortizes each SQL statement. 10,000: the 100k-call day's
# peak RSS 505 -> 407 MB against 25,000, at the same speed (docs/performance.md).
CHUNK_RECORDS = 10_000


@dataclass
class SyncResult:
    """What one window's sync did."""

    fetch: WindowResult  # its `records` is empty: they were streamed through, not kept
    load: LoadResult
    loaded: int  # rows of calls written (their keys: the warehouse's _window_keys)
    in_window: int  # distinct records the API returned for the window
    quarantined: int  # quarantine rows built for the window (before dedupe against the table)
    # seconds: pages (waiting on the stream: HTTP, parse and dedupe of each page), parse (summed
    # over the fetch threads), normalize and load (the normalizer's and the writer's threads,
    # overlapping the others), load_wait (the stream stalled on them), commit (after the last
    # page: the last chunks normalized and written, COMMIT)
    phases: dict[str, float] = field(default_factory=dict)


class _Loader:
    """Two threads behind the stream: one normalizes chunks, one runs WindowLoad.add on them;
    each queue holds one chunk at most (back-pressure)."""

    def __init__(self, load: WindowLoad) -> None:
        self._load = load
        self._todo: queue.Queue[Callable[[], Normalized] | None] = queue.Queue(maxsize=1)
        self._ready: queue.Queue[Normalized | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self.loaded = 0  # rows of calls normalized
        self.quarantined = 0
        self.normalize_s = 0.0
        self.load_s = 0.0
        self.wait_s = 0.0
        self._threads = [
            threading.Thread(target=self._normalize, name="chunk-normalizer", daemon=True),
            threading.Thread(target=self._write, name="warehouse-loader", daemon=True),
        ]

    def __enter__(self) -> _Loader:
        for thread in self._threads:
            thread.start()
        return self

    def _normalize(self) -> None:
        while (make := self._todo.get()) is not None:
            if self._error is not None:
                continue  # drain: the transaction is being rolled back
            t = time.perf_counter()
            try:
                chunk = make()
                self.loaded += chunk.calls.num_rows
                self.quarantined += chunk.quarantine.num_rows
            except BaseException as exc:
                self._error = exc
                continue
            self.normalize_s += time.perf_counter() - t
            self._ready.put(chunk)
        self._ready.put(None)

    def _write(self) -> None:
        while (chunk := self._ready.get()) is not None:
            if self._error is not None:
                continue  # drain: the transaction is already rolled back
            t = time.perf_counter()
            try:
                self._load.add(chunk.calls, chunk.raw, chunk.quarantine)
            except BaseException as exc:
                self._error = exc
            self.load_s += time.perf_counter() - t

    def put(self, make: Callable[[], Normalized]) -> None:
        """Queue a chunk: `make` normalizes it (in the normalizer's thread)."""
        if self._error is not None:
            raise self._error
        t = time.perf_counter()
        self._todo.put(make)
        self.wait_s += time.perf_counter() - t

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._todo.put(None)
        for thread in self._threads:
            thread.join()
        if self._error is not None and exc is None:
            raise self._error


def load_stream(
    stream: WindowStream,
    open_warehouse: Callable[[], Warehouse],
    scope: Scope,
    window: Window,
    *,
    synced_at: datetime,
    chunk_records: int = CHUNK_RECORDS,
    day_status: Callable[[WindowResult], dict[str, Any]] | None = None,
    spec: Stream = RECENT_CALLS,
) -> SyncResult:
    """Normalize and load a window's stream as it arrives, all of it in one transaction.

    `day_status(result)`, when given, is the sync's calls_day_syncs row (WindowLoad.record_day),
    written in the same transaction as the calls.

    The warehouse is opened (`open_warehouse()`, which the caller closes) only once the first
    chunk is ready or the stream has ended: DuckDB lets one process hold the file, and a day that
    fits one chunk (most days of most accounts) is then held for its load only, not for a fetch
    that may wait minutes on the rate limit.
    """
    chunk = partial(
        normalize,
        synced_at=synced_at,
        scope_sid=scope.sid,
        window_start=window.start,
        window_end=window.end,
        stream=spec,
    )
    waited = [0.0]  # seconds waiting on the stream: HTTP, parse and dedupe of its pages
    chunks = _timed(stream.chunks(chunk_records), waited)
    first = list(itertools.islice(chunks, 1))
    wh = open_warehouse()
    with wh.window_load(window_start=window.start, window_end=window.end, table=spec.table) as load:
        with _Loader(load) as loader:
            for records in itertools.chain(first, chunks):
                loader.put(partial(chunk, records))
            t = time.perf_counter()
        if day_status is not None:  # the stream is exhausted: its result is set
            assert stream.result is not None
            load.record_day(day_status(stream.result))
    commit_s = time.perf_counter() - t  # the loader draining, the last rows written, COMMIT
    result = stream.result
    assert result is not None  # the stream was exhausted
    return SyncResult(
        fetch=result,
        load=load.result(),
        loaded=loader.loaded,
        in_window=result.in_window,
        quarantined=loader.quarantined,
        phases={
            "pages": waited[0],
            "parse": result.parse_s,
            "normalize": loader.normalize_s,
            "load": loader.load_s,
            "load_wait": loader.wait_s,
            "commit": commit_s,
        },
    )


def _timed(items: Iterator[Records], waited: list[float]) -> Iterator[Records]:
    """`items`, adding the seconds each took to arrive to waited[0]."""
    while True:
        t = time.perf_counter()
        item = next(items, None)
        waited[0] += time.perf_counter() - t
        if item is None:
            return
        yield item
