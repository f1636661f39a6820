"""A complete, polite RecentCalls client.

CONTRACT SKELETON: the public surface below is what the Dagster layer and tests use.

Given a scope (an account or a service provider) and a half-open UTC window [start, end), return
every call attempted in it exactly once: pacing from the RateLimit headers (leaving a reserve to
the operator's web UI), retries with a written rule, window paging with completeness against
`total` and repair when records land while paging. The API key never appears in a message, a log
line, a repr or a traceback. Knows nothing of Dagster or DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


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


@dataclass
class WindowResult:
    """Every call of one window, and what getting them cost."""

    scope: Scope
    window: Window
    records: list[dict[str, Any]]  # raw API records, distinct, start <= attempted_at < end
    total: int  # the API's total for the window, as last confirmed
    requests: int = 0  # HTTP requests sent, retries included
    pages: int = 0  # 200 pages read
    records_seen: int = 0  # records received, before dedupe and window filtering
    duplicates_dropped: int = 0
    out_of_window_dropped: int = 0
    repairs: int = 0  # requests spent repairing the window after a detected shift
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count
    rate_limit_wait_s: float = 0.0  # seconds slept to stay inside the bucket (429 waits too)
    elapsed_s: float = 0.0


class JambonzError(Exception):
    """Base of every error the client raises; messages name scope and base URL, never the key."""


class JambonzAuthError(JambonzError):
    """401: the API key was refused."""


class JambonzForbiddenError(JambonzError):
    """403: the key may not read this account or service provider."""


class JambonzBadRequestError(JambonzError):
    """400 (or a deterministic 500 such as a bad filter regex): the request is wrong."""


class JambonzUnavailableError(JambonzError):
    """Retries exhausted: 5xx, timeouts, resets, bad bodies or 429s beyond the bounds."""


class IncompleteWindowError(JambonzError):
    """The window could not be made complete within bounded attempts; names the shortfall."""


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
        reserve: float = 0.2,
        fallback_rate: tuple[int, float] | None = (600, 300.0),
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        max_retry_s: float = 300.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        concurrency: int = 1,
        page_size: int = 500,
    ) -> None:
        raise NotImplementedError

    def fetch_window(self, scope: Scope, window: Window) -> WindowResult:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RecentCallsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
