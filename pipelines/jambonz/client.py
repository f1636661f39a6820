"""A complete, polite RecentCalls client.

Given a scope (an account or a service provider) and a half-open UTC window [start, end), return
every call attempted in it exactly once: pacing from the RateLimit headers (leaving a reserve to
the operator's web UI), retries with a written rule, window paging with completeness against
`total` and repair when records land while paging. The API key never appears in a message, a log
line, a repr or a traceback. Knows nothing of Dagster or DuckDB.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.jambonz.columnar import parse_page
from pipelines.jambonz.errors import (
    IncompleteWindowError,
    JambonzAuthError,
    JambonzBadRequestError,
    JambonzError,
    JambonzForbiddenError,
    JambonzUnavailableError,
)
from pipelines.jambonz.pacing import (
    DEFAULT_RESERVE,
    RESET_MARGIN_S,
    Pacer,
    backoff_delay,
    parse_rate_headers,
    parse_retry_after,
)
from pipelines.jambonz.paging import (
    STRICT_UTC,
    BadBodyError,
    Page,
    error_message,
    format_ns,
    is_query_parse_error,
    pages_for,
    parse_envelope,
    parse_instant,
    split_points,
    to_ns,
)
from pipelines.jambonz.records import record_identity


@dataclass(frozen=True)
class Scope:
    """Whose calls: one account, or every account of a service provider."""

    kind: Literal["account", "service_provider"]
    sid: str

    @classmethod
    def account(cls, sid: str) -> Scope:
        return cls("account", sid)

    @classmethod
    def service_provider(cls, sid: str) -> Scope:
        return cls("service_provider", sid)

    @property
    def path(self) -> str:
        if self.kind == "account":
            return f"/v1/Accounts/{self.sid}/RecentCalls"
        return f"/v1/ServiceProviders/{self.sid}/RecentCalls"


@dataclass(frozen=True)
class Window:
    """A half-open UTC window [start, end); both datetimes are timezone-aware."""

    start: datetime
    end: datetime


@dataclass(kw_only=True)
class WindowStats:
    """What paging one window cost: counted while it runs (under its lock), kept in its result."""

    requests: int = 0  # HTTP requests sent, retries included
    pages: int = 0  # 200 pages read
    columnar_pages: int = 0  # pages read by columnar.read_page (a columnar stream's fast path)
    records_seen: int = 0  # records received, before dedupe and window filtering
    duplicates_dropped: int = 0
    out_of_window_dropped: int = 0
    repairs: int = 0  # requests spent repairing the window after a detected shift
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count
    rate_limit_wait_s: float = 0.0  # seconds slept to stay inside the bucket (429 waits too)
    parse_s: float = 0.0  # seconds spent parsing bodies (inside elapsed_s)
    in_window: int = 0  # distinct in-window records delivered (len(records) unless streamed)
    elapsed_s: float = 0.0


@dataclass(kw_only=True)
class WindowResult(WindowStats):
    """Every call of one window, and what getting them cost."""

    scope: Scope
    window: Window
    records: list[dict[str, Any]]  # raw API records, distinct, start <= attempted_at < end
    total: int  # the API's total for the window, as last confirmed


@dataclass
class Batch:
    """Records of one page (or of a repair) new to the window: distinct, start <= at < end.

    A columnar stream (stream_window(columnar=True)) hands the records of pages that
    columnar.read_page took as `tables` (for columnar.normalize_columns), the rest as `records`.
    """

    records: list[dict[str, Any]]
    raw: list[str] | None  # records[i]'s JSON text as received, when the parser kept it
    tables: list[pa.Table] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.records) + sum(int(t.num_rows) for t in self.tables)


class WindowStream:
    """The records of one window as batches, in constant memory; `result` once exhausted.

    Iterate it once. Every record is yielded once (deduplicated against everything yielded
    before, by records.record_identity) and only if attempted in the window; after the last
    batch, `result` carries the same totals and costs as fetch_window's WindowResult (its
    `records` empty, `in_window` counting what was yielded). Errors surface from the iteration.
    """

    def __init__(self, produce: Callable[[WindowStream], Iterator[Batch]]) -> None:
        """produce(stream): the batches, a generator that sets `stream.result` at its end."""
        self.result: WindowResult | None = None
        self._batches = produce(self)

    def __iter__(self) -> Iterator[Batch]:
        return self._batches


__all__ = [
    "Batch",
    "IncompleteWindowError",
    "JambonzAuthError",
    "JambonzBadRequestError",
    "JambonzError",
    "JambonzForbiddenError",
    "JambonzUnavailableError",
    "RecentCallsClient",
    "Scope",
    "Window",
    "WindowResult",
    "WindowStream",
]

USER_AGENT = "jambonz-warehouse/0.1 (RecentCalls sync; +https://github.com/jambonz)"
REPAIR_COUNT = 500  # the largest page the server serves: one request verifies up to 500 calls
REPAIR_LEAF = 450  # aim sub-windows below a full page, leaving room for late landings
MAX_REPAIR_ROUNDS = 4

log = logging.getLogger("pipelines.jambonz.client")


def describe(scope: Scope, window: Window) -> str:
    """`account <sid> [start, end)` for messages: what a person needs to find the sync."""
    kind = "account" if scope.kind == "account" else "service provider"
    return f"{kind} {scope.sid} window [{window.start.isoformat()}, {window.end.isoformat()})"


class _BearerAuth(httpx.Auth):
    """Adds the Bearer header per request; its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self.__key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.__key}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


class _Retry(Exception):
    """Internal signal: this attempt failed transiently; never escapes the client."""

    def __init__(self, cause: str, detail: str, *, wait_s: float | None = None) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.wait_s = wait_s  # a server-given wait (429), else backoff applies


@dataclass
class _Run:
    """State of one window's paging: what was seen and what it cost. Guarded by `lock`.

    Only identities and attempt times are kept; records wait in `pending` until handed on.
    """

    scope: Scope
    window: Window
    lo: int
    hi: int
    columnar: bool = False  # read pages with columnar.read_page where it takes them
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: set[str] = field(default_factory=set)  # identities delivered or out of the window
    times: array[int] = field(default_factory=lambda: array("q"))  # ns of delivered records
    pending: list[dict[str, Any]] = field(default_factory=list)
    pending_raw: list[str] | None = field(default_factory=list)
    pending_tables: list[pa.Table] = field(default_factory=list)
    stats: WindowStats = field(default_factory=WindowStats)

    def absorb(self, page: Page) -> tuple[int, int]:
        """Add a page's records; returns (new distinct in-window, duplicates)."""
        cols = page.columns
        data = page.data
        idents: list[str] = cols.keys if cols is not None else _identities(data)
        times: list[int] | list[int | None] = cols.instants if cols is not None else _instants(data)
        raw = page.raw
        keep: list[int] = []
        new = dups = 0
        with self.lock:
            self.stats.pages += 1
            self.stats.columnar_pages += cols is not None
            self.stats.records_seen += len(idents)
            seen, lo, hi = self.seen, self.lo, self.hi
            if cols is not None and idents:
                # the common page: distinct calls, none seen, all inside the window; checked with
                # set operations and min/max in C instead of a Python loop over the records
                fresh = set(idents)
                instants = cols.instants
                if (
                    len(fresh) == len(idents)
                    and seen.isdisjoint(fresh)
                    and lo <= min(instants)
                    and max(instants) < hi
                ):
                    seen |= fresh
                    self.times.extend(instants)
                    self.pending_tables.append(cols.records)
                    self.stats.in_window += len(idents)
                    return len(idents), 0
            for i, ident in enumerate(idents):
                if ident in seen:
                    dups += 1
                    continue
                seen.add(ident)
                ns = times[i]
                if ns is not None:
                    if not lo <= ns < hi:
                        self.stats.out_of_window_dropped += 1
                        continue
                    self.times.append(ns)
                # a record without a readable attempted_at is kept: records.py quarantines it
                keep.append(i)
            new = len(keep)
            if cols is not None:
                if new:
                    table = cols.records
                    self.pending_tables.append(table if new == len(idents) else table.take(keep))
            else:
                self.pending.extend(data[i] for i in keep)
                if raw is None or self.pending_raw is None:
                    self.pending_raw = None
                else:
                    self.pending_raw.extend(raw[i] for i in keep)
            self.stats.in_window += new
            self.stats.duplicates_dropped += dups
        return new, dups

    def take(self) -> Batch:
        """The records absorbed since the last take, handed on and forgotten here."""
        with self.lock:
            batch = Batch(self.pending, self.pending_raw, self.pending_tables)
            self.pending, self.pending_raw, self.pending_tables = [], [], []
        return batch

    def count_in(self, a: int, b: int) -> int:
        with self.lock:
            if a <= self.lo and b >= self.hi:
                return self.stats.in_window
            return sum(1 for ns in self.times if a <= ns < b)

    def times_in(self, a: int, b: int) -> list[int]:
        with self.lock:
            return sorted(ns for ns in self.times if a <= ns < b)


def _identities(data: list[dict[str, Any]]) -> list[str]:
    """record_identity of each record; the common case (a call_sid) without a call."""
    sids = [r.get("call_sid") for r in data]
    return [
        sid if type(sid) is str and sid else record_identity(r)
        for sid, r in zip(sids, data, strict=True)
    ]


def _instants(data: list[dict[str, Any]]) -> list[int | None]:
    """attempted_at of each record in ns (None when unreadable), as paging.parse_instant reads it.

    The server's own shape (RFC 3339 UTC with `Z`) is parsed by Arrow in one call; a page with
    anything else falls back to parse_instant record by record.
    """
    values = [r.get("attempted_at") for r in data]
    try:
        arr = pa.array(values, pa.string())
        if arr.null_count == 0 and pc.all(pc.match_substring_regex(arr, STRICT_UTC)).as_py():
            ns: list[int | None] = (
                arr.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist()
            )
            return ns
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    out: list[int | None] = []
    for value in values:
        try:
            out.append(parse_instant(value))
        except ValueError:
            out.append(None)
    return out


class RecentCallsClient:
    """Reads RecentCalls windows. Thread-safe; one instance may serve several windows.

    Args:
        base_url: e.g. https://api.jambonz.cloud.
        api_key: the Bearer token; kept private, never printed.
        reserve: share of the rate-limit bucket left to other clients (0..1).
        fallback_rate: (requests, seconds) to pace to when the server sends no RateLimit
            headers; None to not pace at all then (a self-hosted server without a limiter).
        timeout_s: connect/read/write/pool timeout of each request.
        max_attempts: attempts per request before JambonzUnavailableError.
        max_retry_s: total seconds one request may spend retrying.
        backoff_base_s, backoff_cap_s: capped, fully jittered exponential backoff.
        concurrency: pages in flight at once (1 = sequential); always inside the pacing budget.
        page_size: count per request, 25..500.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        reserve: float = DEFAULT_RESERVE,
        fallback_rate: tuple[int, float] | None = (600, 300.0),
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        max_retry_s: float = 300.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        concurrency: int = 1,
        page_size: int = 500,
        _sleep: Callable[[float], None] = time.sleep,
        _monotonic: Callable[[], float] = time.monotonic,
        _random: Callable[[], float] = random.random,
        _transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 25 <= page_size <= 500:
            raise ValueError(f"page_size must be within 25..500 (the server's bounds): {page_size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1: {concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1: {max_attempts}")
        if not api_key:
            raise ValueError("api_key is empty: set JAMBONZ_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.max_retry_s = max_retry_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.timeout_s = timeout_s
        self._sleep = _sleep
        self._monotonic = _monotonic
        self._random = _random
        # requests in flight at once; a columnar stream may parse one page more meanwhile
        self._gate = threading.BoundedSemaphore(concurrency)
        self.pacer = Pacer(
            reserve=reserve, fallback_rate=fallback_rate, sleep=_sleep, monotonic=_monotonic
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_BearerAuth(api_key),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            transport=_transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return (
            f"RecentCallsClient(base_url={self.base_url!r}, page_size={self.page_size}, "
            f"concurrency={self.concurrency}, reserve={self.pacer.reserve})"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RecentCallsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one window ---------------------------------------------------------------------------

    def fetch_window(self, scope: Scope, window: Window) -> WindowResult:
        """Every call of the window in one list (stream_window keeps memory flat instead)."""
        stream = self.stream_window(scope, window)
        records = [record for batch in stream for record in batch.records]
        assert stream.result is not None
        stream.result.records = records
        return stream.result

    def stream_window(
        self, scope: Scope, window: Window, *, columnar: bool = False
    ) -> WindowStream:
        """The window's records batch by batch (a page, or what a repair found); see WindowStream.

        Nothing is sent until the stream is iterated. Memory holds the identities seen, not the
        records: a consumer that writes each batch away pages a day of any size in flat memory.
        columnar: pages columnar.read_page takes come as Arrow tables (Batch.tables), the rest
        as dicts; the sync's fast path.
        """
        lo, hi = to_ns(window.start), to_ns(window.end)
        if hi <= lo:
            raise ValueError(f"empty or reversed window: {describe(scope, window)}")
        run = _Run(scope, window, lo, hi, columnar)
        return WindowStream(lambda stream: self._stream(stream, run))

    def _stream(self, stream: WindowStream, run: _Run) -> Iterator[Batch]:
        started = self._monotonic()
        scope, window, lo, hi = run.scope, run.window, run.lo, run.hi
        first = self._page(run, lo, hi, 1, self.page_size)
        run.absorb(first)
        yield run.take()
        total = first.total
        suspicious = first.size < min(self.page_size, total)
        n_pages = pages_for(total, self.page_size) if total else 1
        totals = [total]
        for number, page in self._rest(run, lo, hi, n_pages):
            _, dups = run.absorb(page)
            yield run.take()
            totals.append(page.total)
            short = page.size < self.page_size and number < n_pages
            suspicious = suspicious or dups > 0 or short or page.total != total
        # in flight together, pages may be answered out of order: the largest total is the latest
        latest = totals[-1] if self.concurrency == 1 and not run.columnar else max(totals)
        if suspicious or run.count_in(lo, hi) != latest:
            log.info(
                "%s: paging pass collected %d of %d (totals %d..%d); repairing",
                describe(scope, window),
                run.count_in(lo, hi),
                latest,
                min(totals),
                max(totals),
            )
            latest = self._repair(run)
            batch = run.take()
            if batch.size:
                yield batch
        run.stats.elapsed_s = self._monotonic() - started
        result = WindowResult(
            scope=scope, window=window, records=[], total=latest, **vars(run.stats)
        )
        log.info(
            "%s: %d calls (total %d) in %d requests, %d pages, %d repairs, retries %s, "
            "%.1fs waiting on the rate limit, %.1fs",
            describe(scope, window),
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

    def _rest(self, run: _Run, lo: int, hi: int, n_pages: int) -> Iterator[tuple[int, Page]]:
        """Pages 2..n_pages, in order; concurrently when asked, all through the one pacer."""
        numbers = range(2, n_pages + 1)
        # A columnar stream's parse releases the GIL: one worker more than requests in flight
        # (the gate) parses a page while the next is fetched.
        workers = self.concurrency + (1 if run.columnar else 0)
        if workers == 1 or n_pages <= 2:
            for n in numbers:
                yield n, self._page(run, lo, hi, n, self.page_size)
            return
        pool = ThreadPoolExecutor(workers, thread_name_prefix="recentcalls")
        # At most 2 x workers pages ahead of the consumer: memory stays flat when it is slower.
        ahead = 2 * workers
        try:
            futures: deque[tuple[int, Future[Page]]] = deque()
            todo = iter(numbers)
            for n in itertools.islice(todo, ahead):
                futures.append((n, pool.submit(self._page, run, lo, hi, n, self.page_size)))
            while futures:
                n, future = futures.popleft()
                page = future.result()
                for m in itertools.islice(todo, 1):
                    futures.append((m, pool.submit(self._page, run, lo, hi, m, self.page_size)))
                yield n, page
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- repair ------------------------------------------------------------------------------

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
        total = shortfall = 0
        for _ in range(MAX_REPAIR_ROUNDS):
            ok, total = self._verify(run, lo, hi, budget + spent_at_start)
            if ok:
                return total
            shortfall = total - run.count_in(lo, hi)
            if run.stats.repairs - spent_at_start >= budget:
                break
        raise IncompleteWindowError(
            f"{describe(run.scope, run.window)} at {self.base_url}: the server counts {total} "
            f"calls but {run.count_in(lo, hi)} were collected (short by {max(shortfall, 0)}) "
            f"after {run.stats.repairs} repair requests; records are still landing or paging is "
            "unstable: retry the window later"
        )

    def _verify(self, run: _Run, a: int, b: int, limit: int) -> tuple[bool, int]:
        """Verify [a, b); returns (confirmed by its own answer, the total it answered)."""
        if run.stats.repairs >= limit:
            return False, 0
        page = self._page(run, a, b, 1, REPAIR_COUNT, repair=True)
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
        edges = [a, *cuts, b]
        for lo, hi in itertools.pairwise(edges):
            self._verify(run, lo, hi, limit)
        return False, page.total

    # -- one request ---------------------------------------------------------------------------

    def _page(
        self, run: _Run, a: int, b: int, number: int, count: int, *, repair: bool = False
    ) -> Page:
        """One page of [a, b) (ns, half-open), with pacing and the retry rule."""
        params = {
            "page": str(number),
            "count": str(count),
            "start": format_ns(a),
            "end": format_ns(b - 1),
        }
        attempt = 0
        first_try = self._monotonic()
        while True:
            try:
                return self._send(run, params, repair=repair)
            except _Retry as retry:
                attempt += 1
                with run.lock:
                    run.stats.retries[retry.cause] = run.stats.retries.get(retry.cause, 0) + 1
                spent = self._monotonic() - first_try
                if retry.wait_s is not None:
                    delay = retry.wait_s
                else:
                    delay = backoff_delay(
                        attempt - 1, self.backoff_base_s, self.backoff_cap_s, self._random
                    )
                if attempt >= self.max_attempts or spent + delay > self.max_retry_s:
                    raise JambonzUnavailableError(
                        f"jambonz at {self.base_url} is unavailable for "
                        f"{describe(run.scope, run.window)}: gave up after {attempt} attempts "
                        f"in {spent:.1f}s; last cause: {retry.cause}: {retry.detail}"
                    ) from None
                log.warning(
                    "%s page %d: %s (%s); retry %d/%d in %.2fs",
                    describe(run.scope, run.window),
                    number,
                    retry.cause,
                    retry.detail,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                if retry.cause == "429":
                    # the wait happens in acquire, counted there (after a Retry-After, release
                    # has already blocked the pacer for the same delay)
                    self.pacer.on_429(delay)
                else:
                    self._sleep(delay)

    def _send(self, run: _Run, params: dict[str, str], *, repair: bool) -> Page:
        """One attempt: the HTTP exchange inside the gate and the pacing, the parse after both
        (so a columnar stream parses one page while the next one is on the wire)."""
        with self._gate:
            waited = self.pacer.acquire()
            with run.lock:
                run.stats.rate_limit_wait_s += waited
                run.stats.requests += 1
                if repair:
                    run.stats.repairs += 1
            response = self._exchange(run, params)
        return self._interpret(run, response)

    def _exchange(self, run: _Run, params: dict[str, str]) -> httpx.Response:
        info = None
        answered = False
        retry_after = None
        try:
            try:
                response = self._http.get(run.scope.path, params=params)
            except httpx.TimeoutException as exc:
                raise _Retry("timeout", _cause(exc)) from None
            except httpx.ConnectError as exc:
                raise _Retry("connect", _cause(exc)) from None
            except httpx.RemoteProtocolError as exc:
                kind = "truncated" if "message body" in str(exc) else "reset"
                raise _Retry(kind, _cause(exc)) from None
            except httpx.TransportError as exc:
                raise _Retry("reset", _cause(exc)) from None
            answered = True
            info = parse_rate_headers(response.headers)
            if response.status_code == 429:
                # Retry-After outranks the 429's RateLimit headers (a proxy's or a restarted
                # limiter's Remaining 0 / Reset 290 must not hold us for minutes): the pacer
                # waits for it, then probes the bucket afresh
                retry_after = parse_retry_after(response.headers.get("retry-after"))
        finally:
            self.pacer.release(info, answered=answered, retry_after_s=retry_after)
        return response

    def _interpret(self, run: _Run, response: httpx.Response) -> Page:
        status = response.status_code
        where = f"{describe(run.scope, run.window)} at {self.base_url}"
        if status == 200:
            t = time.perf_counter()
            try:
                body = response.content
                return parse_page(body) if run.columnar else parse_envelope(body)
            except BadBodyError as exc:
                raise _Retry("bad_body", f"200 with a bad body: {exc}") from None
            finally:
                with run.lock:
                    run.stats.parse_s += time.perf_counter() - t
        body = response.content
        message = error_message(body)
        if status == 429:
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is None:
                info = parse_rate_headers(response.headers)
                wait = info.reset_s + RESET_MARGIN_S if info and info.remaining == 0 else None
            raise _Retry("429", f"429 Too Many Requests: {message[:80]}", wait_s=wait)
        if status == 401:
            raise JambonzAuthError(
                f"jambonz at {self.base_url} refused the API key (401 Unauthorized) for "
                f"{describe(run.scope, run.window)}: check JAMBONZ_API_KEY"
            )
        if status == 403:
            what = "account" if run.scope.kind == "account" else "service provider"
            env = (
                "JAMBONZ_ACCOUNT_SID" if run.scope.kind == "account" else "the service provider sid"
            )
            raise JambonzForbiddenError(
                f"jambonz at {self.base_url} answered 403 ({message}): the API key may not read "
                f"{what} {run.scope.sid} ({describe(run.scope, run.window)}); check the key's "
                f"scope (account, service provider or admin) and {env}"
            )
        if status == 500 and is_query_parse_error(body):
            raise JambonzBadRequestError(
                f"jambonz at {self.base_url} could not parse the query for {where}: {message}"
            )
        if 400 <= status < 500:
            raise JambonzBadRequestError(
                f"jambonz at {self.base_url} rejected the request for {where} ({status}): {message}"
            )
        kind = "html" if body.lstrip()[:1] == b"<" else "body"
        raise _Retry("5xx", f"{status} from the server ({kind}: {message[:80]!r})")


def _cause(exc: httpx.HTTPError) -> str:
    """An httpx error as text: its type and message, never its request's headers."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
