"""One RecentCalls request, paced and retried, answered as a Page.

The written retry rule: timeouts, connection errors, resets, truncated or unreadable 200 bodies,
5xx and 429 are retried with capped, fully jittered exponential backoff (a 429 waits what the
server said: Retry-After, else RateLimit-Reset), up to `max_attempts` and `max_retry_s`, then
JambonzUnavailableError. Until the server has answered once, connection failures give up within
FIRST_CONTACT_S (JambonzUnreachableError: a mistyped URL must not wait minutes). 401, 403, other
4xx and a 500 that is the database refusing the query raise at once. Every request waits its
turn in the Pacer (pacing.py), which keeps the reserve of the shared rate-limit bucket. The API
key never appears in a message, a log line or a repr.
Knows nothing of windows: pipelines/jambonz/window.py pages over `Transport.fetch`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime

import httpx

from pipelines.jambonz.columnar import read_page
from pipelines.jambonz.errors import (
    JambonzAuthError,
    JambonzBadRequestError,
    JambonzForbiddenError,
    JambonzUnavailableError,
    JambonzUnreachableError,
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
    BadBodyError,
    Page,
    Scope,
    Window,
    describe,
    error_message,
    format_ns,
    is_query_parse_error,
    parse_envelope,
)
from pipelines.jambonz.window import WindowStats

USER_AGENT = "jambonz-warehouse/0.1 (RecentCalls sync; +https://github.com/jambonz)"

log = logging.getLogger("pipelines.jambonz.client")

# Until the server has answered once: how long connection failures are retried, and how long one
# connection may take to be accepted. A refused or mistyped URL fails in seconds, not minutes.
FIRST_CONTACT_S = 20.0
CONNECT_TIMEOUT_S = 10.0


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
    """Internal signal: this attempt failed transiently; never escapes the transport."""

    def __init__(self, cause: str, detail: str, *, wait_s: float | None = None) -> None:
        super().__init__(detail)
        self.cause = cause
        self.wait_s = wait_s  # a server-given wait (429), else backoff applies


def read_body(body: bytes) -> Page:
    """A 200 body as a Page: as Arrow columns where columnar.read_page takes it, else as dicts
    (paging.parse_envelope, which also names a bad body)."""
    return read_page(body) or parse_envelope(body)


class Transport:
    """Paced, retried RecentCalls requests over one HTTP connection pool. Thread-safe.

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
        concurrency: requests in flight at once (1 = sequential); always inside the pacing.
        _sleep, _monotonic, _random, _transport: the clock, jitter and HTTP transport (tests).
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
        _sleep: Callable[[float], None] = time.sleep,
        _monotonic: Callable[[], float] = time.monotonic,
        _random: Callable[[], float] = random.random,
        _transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1: {max_attempts}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1: {concurrency}")
        if not api_key:
            raise ValueError("api_key is empty: set JAMBONZ_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.max_retry_s = max_retry_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = _sleep
        self._monotonic = _monotonic
        self._random = _random
        self.answered = False  # whether the server has answered any request of this client
        self._lock = threading.Lock()  # guards the stats objects requests count into
        # requests in flight at once; one more page may be parsed meanwhile
        self._gate = threading.BoundedSemaphore(concurrency)
        self.pacer = Pacer(
            reserve=reserve, fallback_rate=fallback_rate, sleep=_sleep, monotonic=_monotonic
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_BearerAuth(api_key),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
            transport=_transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def fetch(
        self,
        scope: Scope,
        window: Window,
        stats: WindowStats,
        number: int,
        count: int,
        a: int,
        b: int,
    ) -> Page:
        """Page `number` of [a, b) (ns, half-open) with `count` per page; counted in `stats`."""
        params = {"page": str(number), "count": str(count), "start": format_ns(a)}
        params["end"] = format_ns(b - 1)  # the server's end is inclusive
        attempt = 0
        first_try = self._monotonic()
        while True:
            try:
                # the exchange inside the gate and the pacing, the parse after both (so one page
                # is parsed while the next one is on the wire)
                with self._gate:
                    waited = self.pacer.acquire()
                    with self._lock:
                        stats.rate_limit_wait_s += waited
                        stats.requests += 1
                    response = self._exchange(scope, params)
                return self._interpret(scope, window, stats, response)
            except _Retry as retry:
                attempt += 1
                with self._lock:
                    stats.retries[retry.cause] = stats.retries.get(retry.cause, 0) + 1
                spent = self._monotonic() - first_try
                delay = retry.wait_s
                if delay is None:
                    delay = backoff_delay(
                        attempt - 1, self.backoff_base_s, self.backoff_cap_s, self._random
                    )
                if not self.answered and retry.cause == "connect":
                    limit = min(self.max_retry_s, FIRST_CONTACT_S)
                    if attempt >= self.max_attempts or spent + delay > limit:
                        tried = f"{attempt} attempts in {spent:.1f} s; last: {retry}"
                        raise JambonzUnreachableError(
                            f"{self.base_url} did not answer {describe(scope, window)}: {tried}",
                            tried,
                        ) from None
                elif attempt >= self.max_attempts or spent + delay > self.max_retry_s:
                    raise JambonzUnavailableError(
                        f"jambonz at {self.base_url} is unavailable for "
                        f"{describe(scope, window)}: gave up after {attempt} attempts "
                        f"in {spent:.1f}s; last cause: {retry.cause}: {retry}"
                    ) from None
                log.warning(
                    "%s page %d: %s (%s); retry %d/%d in %.2fs",
                    describe(scope, window),
                    number,
                    retry.cause,
                    retry,
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

    def _exchange(self, scope: Scope, params: dict[str, str]) -> httpx.Response:
        info = None
        answered = False
        retry_after = None
        try:
            try:
                response = self._http.get(scope.path, params=params)
            except httpx.ConnectTimeout as exc:  # not accepted in time: no server there yet
                raise _Retry("connect", _cause(exc)) from None
            except httpx.TimeoutException as exc:
                raise _Retry("timeout", _cause(exc)) from None
            except httpx.ConnectError as exc:
                raise _Retry("connect", _cause(exc)) from None
            except httpx.RemoteProtocolError as exc:
                kind = "truncated" if "message body" in str(exc) else "reset"
                raise _Retry(kind, _cause(exc)) from None
            except httpx.TransportError as exc:
                raise _Retry("reset", _cause(exc)) from None
            answered = self.answered = True
            info = parse_rate_headers(response.headers)
            if response.status_code == 429:
                # Retry-After outranks the 429's RateLimit headers (a proxy's or a restarted
                # limiter's Remaining 0 / Reset 290 must not hold us for minutes): the pacer
                # waits for it, then probes the bucket afresh
                retry_after = parse_retry_after(response.headers.get("retry-after"))
        finally:
            self.pacer.release(info, answered=answered, retry_after_s=retry_after)
        return response

    def _interpret(
        self, scope: Scope, window: Window, stats: WindowStats, response: httpx.Response
    ) -> Page:
        status = response.status_code
        where = f"{describe(scope, window)} at {self.base_url}"
        if status == 200:
            t = time.perf_counter()
            try:
                page = read_body(response.content)
            except BadBodyError as exc:
                raise _Retry("bad_body", f"200 with a bad body: {exc}") from None
            finally:
                with self._lock:
                    stats.parse_s += time.perf_counter() - t
            served = _server_time(response)
            with self._lock:
                stats.pages += 1
                stats.columnar_pages += page.table is not None
                if served is not None and (stats.server_time is None or served < stats.server_time):
                    stats.server_time = served
            return page
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
                f"{describe(scope, window)}: check JAMBONZ_API_KEY"
            )
        if status == 403:
            what = "account" if scope.kind == "account" else "service provider"
            env = "JAMBONZ_ACCOUNT_SID" if scope.kind == "account" else "the service provider sid"
            raise JambonzForbiddenError(
                f"jambonz at {self.base_url} answered 403 ({message}): the API key may not read "
                f"{what} {scope.sid} ({describe(scope, window)}); check the key's "
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


def _server_time(response: httpx.Response) -> datetime | None:
    """The response's Date header as an aware UTC datetime; None when absent or unreadable."""
    raw = response.headers.get("date")
    if not raw:
        return None
    try:
        served = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return served.astimezone(UTC) if served.tzinfo else None


def _cause(exc: httpx.HTTPError) -> str:
    """An httpx error as text: its type and message, never its request's headers."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
