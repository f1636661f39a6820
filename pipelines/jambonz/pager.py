"""A window's pages: every record of [start, end) exactly once, complete against `total`.

`JambonzClient.stream_window(scope, window)` pages the window through the transport (pages 2..n
may be in flight together), each page read at the edge into Arrow (streams.read_page). Records are
deduplicated by key and kept only if their time lies in the window; when paging looks unsound (a
short or repeated page, a total that moved, fewer distinct records than the total), the window
is repaired top-down against the server's counts of sub-windows. Memory holds the keys seen (as
hashes), not the records. No sleeps of its own, no API key; `stream_window(fetch, ...)` pages
over any `fetch` (a list of pages in a test).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from pipelines.jambonz.errors import IncompleteWindowError
from pipelines.jambonz.streams import (
    RECENT_CALLS,
    Page,
    Records,
    Scope,
    Stream,
    Window,
    describe,
    format_ns,
    join,
    read_page,
    to_ns,
)
from pipelines.jambonz.transport import RequestStats, Transport

REPAIR_COUNT = 500  # the largest page the server serves: one request verifies up to 500 calls
REPAIR_LEAF = 450  # aim sub-windows below a full page, leaving room for late landings
MAX_REPAIR_ROUNDS = 4

# page number, count, start ns, end ns (exclusive) -> the page
Fetch = Callable[[int, int, int, int], Page]

log = logging.getLogger("pipelines.jambonz.client")


@dataclass(kw_only=True)
class WindowStats(RequestStats):
    """What paging one window cost: counted while it runs, kept in its result."""

    pages: int = 0  # 200 pages read
    columnar_pages: int = 0  # pages read by Arrow's JSON reader (streams.read_page)
    duplicates_dropped: int = 0
    out_of_window_dropped: int = 0
    repairs: int = 0  # requests spent repairing the window after a detected shift
    in_window: int = 0  # distinct in-window records delivered
    elapsed_s: float = 0.0


@dataclass(kw_only=True)
class WindowResult(WindowStats):
    """What one window held and what getting it cost."""

    scope: Scope
    window: Window
    total: int  # the API's total for the window, as last confirmed


class WindowStream:
    """The records of one window as Records (a page, or what a repair found), in constant
    memory; `result` once exhausted.

    Iterate it once. Every record is yielded once (deduplicated against everything yielded
    before, by key) and only if its time lies in the window; after the last one `result` carries
    the totals and costs. Errors surface from the iteration.
    """

    def __init__(self, produce: Callable[[WindowStream], Iterator[Records]], known: frozenset[str]):
        """produce(stream): the records, a generator that sets `stream.result` at its end."""
        self.result: WindowResult | None = None
        self._records = produce(self)
        self._known = known

    def __iter__(self) -> Iterator[Records]:
        return self._records

    def chunks(self, size: int) -> Iterator[Records]:
        """The records gathered into chunks of at least `size` (the last one smaller), pages
        joined where their columns agree (streams.join)."""
        held: list[Records] = []
        n = 0
        for records in self._records:
            if len(records):
                held.append(records)
                n += len(records)
            if n >= size:
                yield from join(held, self._known)
                held, n = [], 0
        yield from join(held, self._known)


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

    Only keys (hashed) and times are kept; records wait in `pending` until handed on.
    """

    lo: int
    hi: int
    stats: WindowStats
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: Seen = field(default_factory=Seen)  # keys delivered or out of the window
    times: array[int] = field(default_factory=lambda: array("q"))  # ns of delivered records
    pending: list[Records] = field(default_factory=list)

    def absorb(self, page: Page) -> int:
        """Add a page's records; returns how many were duplicates."""
        records = page.records
        idents, times = records.keys, records.instants
        keep: list[int] = []
        dups = 0
        with self.lock:
            stats = self.stats
            stats.pages += 1
            stats.columnar_pages += page.columnar
            seen, lo, hi = self.seen, self.lo, self.hi
            if idents:
                # the common page: distinct records, none seen, all inside the window; checked
                # with set operations and min/max in C instead of a Python loop over the records
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
                    self.pending.append(records)
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
                # a record without a readable time is kept: the normalizer quarantines it
                keep.append(i)
            if keep:
                self.pending.append(records.take(keep))
            stats.in_window += len(keep)
            stats.duplicates_dropped += dups
        return dups

    def take(self) -> list[Records]:
        """The records absorbed since the last take, handed on and forgotten here."""
        with self.lock:
            taken, self.pending = self.pending, []
        return taken

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
    known: frozenset[str] = RECENT_CALLS.required_keys,
) -> WindowStream:
    """The window's records (a page, or what a repair found, at a time); see WindowStream.

    Nothing is fetched until the stream is iterated. stats: counted into while paging (the
    fetch counts its requests into it too) and kept as the result's figures.
    """
    lo, hi = to_ns(window.start), to_ns(window.end)
    if hi <= lo:
        raise ValueError(f"empty or reversed window: {describe(scope, window)}")
    pager = _Pager(fetch, scope, window, page_size, concurrency, monotonic)
    run = _Run(lo, hi, stats if stats is not None else WindowStats())
    return WindowStream(lambda stream: pager.run(stream, run), known)


@dataclass
class _Pager:
    fetch: Fetch
    scope: Scope
    window: Window
    page_size: int
    concurrency: int
    monotonic: Callable[[], float]

    def run(self, stream: WindowStream, run: _Run) -> Iterator[Records]:
        started = self.monotonic()
        lo, hi = run.lo, run.hi
        first = self.fetch(1, self.page_size, lo, hi)
        run.absorb(first)
        yield from run.take()
        total = first.total
        suspicious = first.size < min(self.page_size, total)
        n_pages = pages_for(total, self.page_size)
        totals = [total]
        for number, page in self._rest(lo, hi, n_pages):
            dups = run.absorb(page)
            yield from run.take()
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
            yield from run.take()
        run.stats.elapsed_s = self.monotonic() - started
        result = WindowResult(scope=self.scope, window=self.window, total=latest, **vars(run.stats))
        log.info(
            "%s: %d records (total %d) in %d requests, %d pages, %d repairs, retries %s, "
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


def pages_for(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


def split_points(lo: int, hi: int, known_ns: list[int], parts: int) -> list[int]:
    """Cut [lo, hi) into up to `parts` pieces: at quantiles of the known times inside, so each
    piece holds about the same number of records; evenly by time when none are known.

    Returns the cuts, strictly increasing and strictly inside (lo, hi); empty if hi - lo < 2.
    """
    if hi - lo < 2 or parts < 2:
        return []
    inside = sorted(t for t in known_ns if lo <= t < hi)
    if len(inside) >= parts:
        candidates = [inside[len(inside) * i // parts] for i in range(1, parts)]
    else:
        candidates = [lo + (hi - lo) * i // parts for i in range(1, parts)]
    cuts = sorted({c for c in candidates if lo < c < hi})
    return cuts or [lo + (hi - lo) // 2]


class JambonzClient:
    """Reads a stream's windows (RecentCalls unless told): the source's front door. Thread-safe;
    one instance may serve several windows.

    Args:
        base_url, api_key and **options: the Transport's (pacing, retries, concurrency,
            timeouts); the key is never printed.
        page_size: count per request, 25..500.
        stream: the spec of the endpoint (streams.RECENT_CALLS).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = 500,
        stream: Stream = RECENT_CALLS,
        **options: Any,
    ):
        if not 25 <= page_size <= 500:
            raise ValueError(f"page_size must be within 25..500 (the server's bounds): {page_size}")
        self.transport = Transport(base_url, api_key, **options)
        self.page_size = page_size
        self.stream = stream

    def __repr__(self) -> str:
        t = self.transport
        return (
            f"JambonzClient({self.stream.name}, base_url={t.base_url!r}, "
            f"page_size={self.page_size}, concurrency={t.concurrency}, reserve={t.pacer.reserve})"
        )

    def __enter__(self) -> JambonzClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.close()

    def stream_window(self, scope: Scope, window: Window) -> WindowStream:
        """The window's records as they arrive (see WindowStream)."""
        stats = WindowStats()
        return stream_window(
            partial(self._fetch, scope, window, stats),
            scope,
            window,
            page_size=self.page_size,
            concurrency=self.transport.concurrency,
            stats=stats,
            monotonic=self.transport.monotonic,
            known=self.stream.required_keys,
        )

    def _fetch(
        self,
        scope: Scope,
        window: Window,
        stats: WindowStats,
        number: int,
        count: int,
        a: int,
        b: int,
    ) -> Page:
        """Page `number` of [a, b) (ns, half-open; the server's end is inclusive)."""
        params = {"page": str(number), "count": str(count), "start": format_ns(a)}
        params["end"] = format_ns(b - 1)
        return self.transport.fetch(
            scope,
            scope.path(self.stream),
            params,
            partial(read_page, self.stream),
            stats,
            where=describe(scope, window),
        )
