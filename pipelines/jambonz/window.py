"""Every call of one window exactly once: paging, completeness against `total`, and repair.

`stream_window(fetch, ...)` pages [start, end) through `fetch(page, count, start_ns, end_ns)`,
which returns a paging.Page: over the network (transport.Transport.fetch), or from a list of
pages in a test. Pages 2..n may be in flight together. Records are deduplicated by identity and
kept only if attempted in the window; when paging looks unsound (a short or repeated page, a
total that moved, fewer distinct calls than the total), the window is repaired top-down against
the server's counts of sub-windows. No I/O of its own, no sleeps, no API key.
"""

from __future__ import annotations

import itertools
import logging
import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.jambonz.errors import IncompleteWindowError
from pipelines.jambonz.paging import Page, Scope, Window, describe, pages_for, split_points, to_ns
from pipelines.jambonz.records import identities, parse_times

REPAIR_COUNT = 500  # the largest page the server serves: one request verifies up to 500 calls
REPAIR_LEAF = 450  # aim sub-windows below a full page, leaving room for late landings
MAX_REPAIR_ROUNDS = 4

# page number, count, start ns, end ns (exclusive) -> the page
Fetch = Callable[[int, int, int, int], Page]

log = logging.getLogger("pipelines.jambonz.client")


@dataclass(kw_only=True)
class WindowStats:
    """What paging one window cost: counted while it runs, kept in its result."""

    requests: int = 0  # HTTP requests sent, retries included
    pages: int = 0  # 200 pages read
    columnar_pages: int = 0  # pages read as Arrow (columnar.read_page)
    duplicates_dropped: int = 0
    out_of_window_dropped: int = 0
    repairs: int = 0  # requests spent repairing the window after a detected shift
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count
    rate_limit_wait_s: float = 0.0  # seconds slept to stay inside the bucket (429 waits too)
    parse_s: float = 0.0  # seconds spent parsing bodies (inside elapsed_s)
    in_window: int = 0  # distinct in-window records delivered (len(records) unless streamed)
    elapsed_s: float = 0.0
    # the server's clock (its Date header) at the earliest page read: what jambonz had written
    # by then is what the window holds; None when the server sent no readable Date
    server_time: datetime | None = None


@dataclass(kw_only=True)
class WindowResult(WindowStats):
    """Every call of one window, and what getting them cost."""

    scope: Scope
    window: Window
    records: list[dict[str, Any]]  # raw API records, distinct, start <= attempted_at < end
    total: int  # the API's total for the window, as last confirmed


@dataclass
class Rows:
    """Records of one page read as Arrow, with each one's identity and attempted_at (ns)."""

    table: pa.Table
    keys: list[str]
    instants: list[int | None]


@dataclass
class Batch:
    """Records of one page (or of a repair) new to the window: distinct, start <= at < end (or
    with an unreadable attempted_at, kept for the normalizer to quarantine). Pages read as Arrow
    come as `tables`; the others as `records` (dicts) with their `keys` and `instants`.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    instants: list[int | None] = field(default_factory=list)
    tables: list[Rows] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.records) + sum(int(t.table.num_rows) for t in self.tables)


class WindowStream:
    """The records of one window as batches, in constant memory; `result` once exhausted.

    Iterate it once. Every record is yielded once (deduplicated against everything yielded
    before, by records.record_identity) and only if attempted in the window; after the last
    batch, `result` carries the totals and costs (its `records` empty, `in_window` counting
    what was yielded). Errors surface from the iteration.
    """

    def __init__(self, produce: Callable[[WindowStream], Iterator[Batch]]) -> None:
        """produce(stream): the batches, a generator that sets `stream.result` at its end."""
        self.result: WindowResult | None = None
        self._batches = produce(self)

    def __iter__(self) -> Iterator[Batch]:
        return self._batches


class Seen:
    """The identities a window has seen, as 64-bit hashes: 8 bytes a call in a sorted array
    (plus a set of the latest), where a set of the strings costs ~115 (115 MB for a 1M-call day).

    Python's str hash, salted per process: two calls whose hashes collide would count as one,
    about once in 3e7 1M-call windows. That is never silent: the window then holds fewer distinct
    calls than its total, the repair cannot find the missing one, and the window fails as
    incomplete; the run's retry is another process, with another salt.
    """

    def __init__(self) -> None:
        self._sorted = np.empty(0, np.int64)
        self._recent: set[int] = set()

    def __contains__(self, ident: str) -> bool:
        h = hash(ident)
        return h in self._recent or self._has(np.array([h], np.int64))[0]

    def add(self, ident: str) -> None:
        self._recent.add(hash(ident))
        self._settle()

    def isdisjoint(self, idents: set[str]) -> bool:
        hashes = {hash(i) for i in idents}
        return (
            self._recent.isdisjoint(hashes)
            and not self._has(np.fromiter(hashes, np.int64, len(hashes))).any()
        )

    def update(self, idents: set[str]) -> None:
        self._recent.update(hash(i) for i in idents)
        self._settle()

    def _has(self, hashes: np.ndarray) -> np.ndarray:
        """Which of `hashes` the sorted array holds."""
        if not len(self._sorted):
            return np.zeros(len(hashes), bool)
        at = np.minimum(np.searchsorted(self._sorted, hashes), len(self._sorted) - 1)
        found: np.ndarray = self._sorted[at] == hashes
        return found

    def _settle(self) -> None:
        """Merge the recent set into the array once it holds a quarter as many (or 65,536):
        a merge sorts the lot, so it happens a logarithmic number of times per window."""
        if len(self._recent) >= max(65_536, len(self._sorted) // 4):
            recent = np.fromiter(self._recent, np.int64, len(self._recent))
            self._sorted = np.sort(np.concatenate([self._sorted, recent]))
            self._recent = set()


@dataclass
class _Run:
    """State of one window's paging: what was seen and what it cost. Guarded by `lock`.

    Only identities and attempt times are kept; records wait in `pending` until handed on.
    """

    lo: int
    hi: int
    stats: WindowStats
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: Seen = field(default_factory=Seen)  # identities delivered or out of the window
    times: array[int] = field(default_factory=lambda: array("q"))  # ns of delivered records
    pending: Batch = field(default_factory=Batch)

    def absorb(self, page: Page) -> int:
        """Add a page's records; returns how many were duplicates."""
        if page.table is not None:
            assert page.keys is not None
            assert page.instants is not None
            idents, times = page.keys, page.instants
        else:
            times = parse_times([r.get("attempted_at") for r in page.data]).cast(pa.int64())
            times = times.to_pylist()
            idents = identities(page.data, times)
        keep: list[int] = []
        dups = 0
        with self.lock:
            stats = self.stats
            seen, lo, hi = self.seen, self.lo, self.hi
            if page.table is not None and idents:
                # the common page: distinct calls, none seen, all inside the window; checked with
                # set operations and min/max in C instead of a Python loop over the records
                fresh = set(idents)
                known = [t for t in times if t is not None]
                if (
                    len(fresh) == len(idents)
                    and len(known) == len(times)
                    and seen.isdisjoint(fresh)
                    and lo <= min(known)
                    and max(known) < hi
                ):
                    seen.update(fresh)
                    self.times.extend(known)
                    self.pending.tables.append(Rows(page.table, idents, times))
                    stats.in_window += len(idents)
                    return 0
            for i, ident in enumerate(idents):
                if ident in seen:
                    dups += 1
                    continue
                seen.add(ident)
                ns = times[i]
                if ns is not None:
                    if not lo <= ns < hi:
                        stats.out_of_window_dropped += 1
                        continue
                    self.times.append(ns)
                # a record without a readable attempted_at is kept: the normalizer quarantines it
                keep.append(i)
            keys = [idents[i] for i in keep]
            instants = [times[i] for i in keep]
            if page.table is None:
                self.pending.records.extend(page.data[i] for i in keep)
                self.pending.keys.extend(keys)
                self.pending.instants.extend(instants)
            elif keep:
                table = page.table if len(keep) == page.size else page.table.take(keep)
                self.pending.tables.append(Rows(table, keys, instants))
            stats.in_window += len(keep)
            stats.duplicates_dropped += dups
        return dups

    def take(self) -> Batch:
        """The records absorbed since the last take, handed on and forgotten here."""
        with self.lock:
            batch, self.pending = self.pending, Batch()
        return batch

    def count_in(self, a: int, b: int) -> int:
        with self.lock:
            if a <= self.lo and b >= self.hi:
                return self.stats.in_window
            return sum(1 for ns in self.times if a <= ns < b)

    def times_in(self, a: int, b: int) -> list[int]:
        with self.lock:
            return sorted(ns for ns in self.times if a <= ns < b)


def stream_window(
    fetch: Fetch,
    scope: Scope,
    window: Window,
    *,
    page_size: int,
    concurrency: int = 1,
    stats: WindowStats | None = None,
    monotonic: Callable[[], float],
) -> WindowStream:
    """The window's records batch by batch (a page, or what a repair found); see WindowStream.

    Nothing is fetched until the stream is iterated. Memory holds the identities seen, not the
    records. stats: counted into while paging (the fetch may count into it too) and kept as the
    result's figures.
    """
    lo, hi = to_ns(window.start), to_ns(window.end)
    if hi <= lo:
        raise ValueError(f"empty or reversed window: {describe(scope, window)}")
    pager = _Pager(fetch, scope, window, page_size, concurrency, monotonic)
    run = _Run(lo, hi, stats if stats is not None else WindowStats())
    return WindowStream(lambda stream: pager.run(stream, run))


@dataclass
class _Pager:
    fetch: Fetch
    scope: Scope
    window: Window
    page_size: int
    concurrency: int
    monotonic: Callable[[], float]

    def run(self, stream: WindowStream, run: _Run) -> Iterator[Batch]:
        started = self.monotonic()
        lo, hi = run.lo, run.hi
        first = self.fetch(1, self.page_size, lo, hi)
        run.absorb(first)
        yield run.take()
        total = first.total
        suspicious = first.size < min(self.page_size, total)
        n_pages = pages_for(total, self.page_size)
        totals = [total]
        for number, page in self._rest(lo, hi, n_pages):
            dups = run.absorb(page)
            yield run.take()
            totals.append(page.total)
            short = page.size < self.page_size and number < n_pages
            suspicious = suspicious or dups > 0 or short or page.total != total
        # in flight together, pages may be answered out of order: the largest total is the latest
        latest = max(totals)
        collected = run.count_in(lo, hi)
        if suspicious or collected != latest:
            log.info(
                "%s: paging pass collected %d of %d (totals %d..%d); repairing",
                describe(self.scope, self.window),
                collected,
                latest,
                min(totals),
                latest,
            )
            latest = self._repair(run)
            batch = run.take()
            if batch.size:
                yield batch
        run.stats.elapsed_s = self.monotonic() - started
        result = WindowResult(
            scope=self.scope, window=self.window, records=[], total=latest, **vars(run.stats)
        )
        log.info(
            "%s: %d calls (total %d) in %d requests, %d pages, %d repairs, retries %s, "
            "%.1fs waiting on the rate limit, %.1fs",
            describe(self.scope, self.window),
            result.in_window,
            result.total,
            result.requests,
            result.pages,
            result.repairs,
            result.retries or "none",
            result.rate_limit_wait_s,
            result.elapsed_s,
        )
        stream.result = result

    def _rest(self, lo: int, hi: int, n_pages: int) -> Iterator[tuple[int, Page]]:
        """Pages 2..n_pages, in order; concurrently when asked."""
        todo = iter(range(2, n_pages + 1))
        if n_pages <= 2:
            for n in todo:
                yield n, self.fetch(n, self.page_size, lo, hi)
            return
        # A page's parse releases the GIL: one worker more than requests in flight (the
        # transport's gate) parses a page while the next is fetched.
        workers = self.concurrency + 1
        pool = ThreadPoolExecutor(workers, thread_name_prefix="recentcalls")
        futures: deque[tuple[int, Future[Page]]] = deque()

        def submit(pages: Iterator[int]) -> None:
            futures.extend((n, pool.submit(self.fetch, n, self.page_size, lo, hi)) for n in pages)

        try:
            # At most 2 x workers pages ahead of the consumer: memory stays flat when it is slower.
            submit(itertools.islice(todo, 2 * workers))
            while futures:
                n, future = futures.popleft()
                page = future.result()
                submit(itertools.islice(todo, 1))
                yield n, page
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _repair(self, run: _Run) -> int:
        """Make the window complete against its total; returns the total last confirmed.

        Each round verifies the whole window top-down: a sub-window is complete when one page of
        500 is not full (it is the whole content) or when the distinct calls known inside it
        account for its total; otherwise it is split at quantiles of the known attempt times
        (as many parts as the shortfall suggests, up to pieces of ~REPAIR_LEAF calls) and each
        part is verified the same way. A round ends with the window confirmed or the shortfalls
        chased; the next round starts from a fresh total.
        """
        lo, hi = run.lo, run.hi
        budget = 4 * pages_for(run.count_in(lo, hi) + 1, REPAIR_LEAF) + 40
        spent_at_start = run.stats.repairs
        total = 0
        for _ in range(MAX_REPAIR_ROUNDS):
            ok, total = self._verify(run, lo, hi, budget + spent_at_start)
            if ok:
                return total
            if run.stats.repairs - spent_at_start >= budget:
                break
        collected = run.count_in(lo, hi)
        raise IncompleteWindowError(
            f"{describe(self.scope, self.window)}: the server counts {total} calls but "
            f"{collected} were collected (short by {max(total - collected, 0)}) after "
            f"{run.stats.repairs} repair requests; records are still landing or paging is "
            "unstable: retry the window later"
        )

    def _verify(self, run: _Run, a: int, b: int, limit: int) -> tuple[bool, int]:
        """Verify [a, b); returns (confirmed by its own answer, the total it answered)."""
        if run.stats.repairs >= limit:
            return False, 0
        before = run.stats.requests
        page = self.fetch(1, REPAIR_COUNT, a, b)
        with run.lock:  # every request of a repair counts, its retries too (at least one)
            run.stats.repairs += max(1, run.stats.requests - before)
        run.absorb(page)
        if page.size < REPAIR_COUNT and page.size >= page.total:
            return True, page.total
        known = run.count_in(a, b)
        if known >= page.total:
            return True, page.total
        if b - a < 2:
            return False, page.total
        parts = min(max(2, page.total - known + 1), max(2, -(-page.total // REPAIR_LEAF)))
        cuts = split_points(a, b, run.times_in(a, b), parts)
        for lo, hi in itertools.pairwise([a, *cuts, b]):
            self._verify(run, lo, hi, limit)
        return False, page.total
