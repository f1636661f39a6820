"""One request to jambonz, paced and retried, its 200 body read by the caller's reader.

The written retry rule: timeouts, connection errors, resets, truncated or unreadable 200 bodies,
5xx and 429 are retried with capped, fully jittered exponential backoff (a 429 waits what the
server said: Retry-After, else RateLimit-Reset), up to `max_attempts` and `max_retry_s`, then
JambonzUnavailableError. Until the server has answered once, connection failures give up within
FIRST_CONTACT_S (JambonzUnreachableError: a mistyped URL must not wait minutes). 401, 403, other
4xx and a 500 that is the database refusing the query raise at once. Every request waits its
turn in the Pacer (pacing.py), which keeps the reserve of the shared rate-limit bucket. The API
key never appears in a message, a log line or a repr.
Knows nothing of windows or records: pipelines/jambonz/pager.py pages over `Transport.fetch`,
handing it the stream's reader (streams.read_page), whose BadBodyError is retried.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx

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
from pipelines.jambonz.streams import BadBodyError, Scope

T = TypeVar("T")

USER_AGENT = "jambonz-warehouse/0.1 (+https://github.com/jambonz)"

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


@dataclass(kw_only=True)
class RequestStats:
    """What a window's requests cost, counted by the transport (the pager adds its own)."""

    requests: int = 0  # HTTP requests sent, retries included
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count
    rate_limit_wait_s: float = 0.0  # seconds slept to stay inside the bucket (429 waits too)
    parse_s: float = 0.0  # seconds spent reading 200 bodies
    # the server's clock (its Date header) at the earliest page read: what jambonz had written
    # by then is what the window holds; None when the server sent no readable Date
    server_time: datetime | None = None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context httpx makes for a client (certifi's roots, or SSL_CERT_FILE/SSL_CERT_DIR),
    made once a process: loading the roots takes 40 ms, which every client of every step paid
    (a day's run has two: calls, alerts). A context is safe to share between clients."""
    return httpx.create_ssl_context()


class Transport:
    """Paced, retried requests over one HTTP connection pool. Thread-safe.

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
        pacer: the Pacer to take turns in, shared with other clients of the same server (one
            run's streams: one bucket); None: its own, from reserve and fallback_rate.
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
        pacer: Pacer | None = None,
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
        self.monotonic = _monotonic
        self._random = _random
        self.answered = False  # whether the server has answered any request of this client
        self._lock = threading.Lock()  # guards the stats objects requests count into
        # requests in flight at once; one more page may be parsed meanwhile
        self._gate = threading.BoundedSemaphore(concurrency)
        self.pacer = pacer or Pacer(
            reserve=reserve, fallback_rate=fallback_rate, sleep=_sleep, monotonic=_monotonic
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_BearerAuth(api_key),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
            transport=_transport,
            follow_redirects=False,
            verify=_tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def fetch(
        self,
        scope: Scope,
        path: str,
        params: dict[str, str],
        read: Callable[[bytes], T],
        stats: RequestStats,
        *,
        where: str,
    ) -> T:
        """GET path?params, its 200 body read by `read` (a BadBodyError from it is retried);
        counted in `stats`. where: what is fetched, for messages (whose window)."""
        attempt = 0
        first_try = self.monotonic()
        while True:
            try:
                # the exchange inside the gate and the pacing, the parse after both (so one page
                # is parsed while the next one is on the wire)
                with self._gate:
                    waited = self.pacer.acquire()
                    with self._lock:
                        stats.rate_limit_wait_s += waited
                        stats.requests += 1
                    response = self._exchange(path, params)
                return self._interpret(scope, where, read, stats, response)
            except _Retry as retry:
                attempt += 1
                with self._lock:
                    stats.retries[retry.cause] = stats.retries.get(retry.cause, 0) + 1
                spent = self.monotonic() - first_try
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
                            f"{self.base_url} did not answer {where}: {tried}",
                            tried,
                        ) from None
                elif attempt >= self.max_attempts or spent + delay > self.max_retry_s:
                    raise JambonzUnavailableError(
                        f"jambonz at {self.base_url} is unavailable for "
                        f"{where}: gave up after {attempt} attempts "
                        f"in {spent:.1f}s; last cause: {retry.cause}: {retry}"
                    ) from None
                log.warning(
                    "%s page %s: %s (%s); retry %d/%d in %.2fs",
                    where,
                    params.get("page"),
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

    def _exchange(self, path: str, params: dict[str, str]) -> httpx.Response:
        info = None
        answered = False
        retry_after = None
        try:
            try:
                response = self._http.get(path, params=params)
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
        self,
        scope: Scope,
        window: str,
        read: Callable[[bytes], T],
        stats: RequestStats,
        response: httpx.Response,
    ) -> T:
        status = response.status_code
        where = f"{window} at {self.base_url}"
        if status == 200:
            t = time.perf_counter()
            try:
                page = read(response.content)
            except BadBodyError as exc:
                raise _Retry("bad_body", f"200 with a bad body: {exc}") from None
            finally:
                with self._lock:
                    stats.parse_s += time.perf_counter() - t
            served = _server_time(response)
            with self._lock:
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
                f"{window}: check JAMBONZ_API_KEY"
            )
        if status == 403:
            what = "account" if scope.kind == "account" else "service provider"
            env = "JAMBONZ_ACCOUNT_SID" if scope.kind == "account" else "the service provider sid"
            raise JambonzForbiddenError(
                f"jambonz at {self.base_url} answered 403 ({message}): the API key may not read "
                f"{what} {scope.sid} ({window}); check the key's "
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


def error_message(body: bytes) -> str:
    """The server's message from any of its error shapes: {"msg"}, {"status","message"}, text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(doc, dict):
        for key in ("message", "msg", "error"):
            if isinstance(doc.get(key), str):
                return str(doc[key]).strip()[:300]
    return text[:300]


def is_query_parse_error(body: bytes) -> bool:
    """A 500 that is the database refusing our query (capture 43): deterministic, not transient."""
    return "error parsing" in error_message(body).lower()
