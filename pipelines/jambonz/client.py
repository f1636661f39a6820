"""A complete, polite RecentCalls client: the source package's front door.

Given a scope (an account or a service provider) and a half-open UTC window [start, end), return
every call attempted in it exactly once. It joins two seams:
- transport.py: one request, paced from the RateLimit headers (leaving a reserve to the
  operator's web UI) and retried by the written rule, read into a Page (Arrow where it can);
- window.py: paging, completeness against `total` and repair, over the transport's fetch.

The API key never appears in a message, a log line, a repr or a traceback. Knows nothing of
Dagster, DuckDB or the warehouse.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.jambonz.errors import (
    IncompleteWindowError,
    JambonzAuthError,
    JambonzBadRequestError,
    JambonzError,
    JambonzForbiddenError,
    JambonzUnavailableError,
)
from pipelines.jambonz.paging import Scope, Window
from pipelines.jambonz.transport import Transport
from pipelines.jambonz.window import (
    Batch,
    Rows,
    WindowResult,
    WindowStats,
    WindowStream,
    stream_window,
)

__all__ = [
    "Batch",
    "IncompleteWindowError",
    "JambonzAuthError",
    "JambonzBadRequestError",
    "JambonzError",
    "JambonzForbiddenError",
    "JambonzUnavailableError",
    "RecentCallsClient",
    "Rows",
    "Scope",
    "Window",
    "WindowResult",
    "WindowStats",
    "WindowStream",
]


class RecentCallsClient(Transport):
    """Reads RecentCalls windows. Thread-safe; one instance may serve several windows.

    Args: those of Transport (pacing, retries, concurrency, timeouts), and
        page_size: count per request, 25..500.
    """

    def __init__(self, base_url: str, api_key: str, *, page_size: int = 500, **options: Any):
        if not 25 <= page_size <= 500:
            raise ValueError(f"page_size must be within 25..500 (the server's bounds): {page_size}")
        super().__init__(base_url, api_key, **options)
        self.page_size = page_size

    def __repr__(self) -> str:
        return (
            f"RecentCallsClient(base_url={self.base_url!r}, page_size={self.page_size}, "
            f"concurrency={self.concurrency}, reserve={self.pacer.reserve})"
        )

    def __enter__(self) -> RecentCallsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_window(self, scope: Scope, window: Window) -> WindowStream:
        """The window's records batch by batch (window.stream_window over this transport)."""
        stats = WindowStats()
        return stream_window(
            partial(self.fetch, scope, window, stats),
            scope,
            window,
            page_size=self.page_size,
            concurrency=self.concurrency,
            stats=stats,
            monotonic=self._monotonic,
        )
