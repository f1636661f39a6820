"""The fault knobs a test turns on, and what each one means; nothing here acts on them.

The server (`server.py`) reads and counts them down per RecentCalls request: the ones that stand
for the infrastructure in front of the API (resets, slow answers, 429 storms, 5xx, broken
bodies) and the ones inside it (calls landing between the count and the page, repeated and short
pages). Tests set fields, or replace the whole `Faults`, while the server runs. This module must
never import the server or act on a knob itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """Knobs a test turns on. Counters count down per affected RecentCalls request (any route)."""

    server_errors: int = 0  # next N requests answer 5xx
    server_error_status: int = 503
    server_error_html: bool = False  # HTML body instead of {"msg": ...}
    storm_429: int = 0  # next N requests answer 429 regardless of the bucket
    storm_429_retry_after: bool = True  # whether those 429s carry Retry-After
    retry_after_s: float = 1.0  # the Retry-After value sent with storm 429s
    # When set, storm 429s carry a spent bucket of their own (RateLimit-Remaining 0, -Reset this
    # many seconds) instead of the real one's: a proxy or a restarted limiter in front of jambonz.
    storm_429_reset_s: float | None = None
    slow_responses: int = 0  # next N requests wait slow_seconds before answering
    slow_seconds: float = 0.0
    truncated_bodies: int = 0  # next N 200 answers send half the body and close
    non_json_bodies: int = 0  # next N 200 answers send an HTML page with status 200
    reset_connections: int = 0  # next N requests: the socket is closed without an answer
    # Not a countdown: while > 0, every RecentCalls request lands N new (already ended) CDRs
    # inside its queried range, after its count and before its data query.
    landing_per_request: int = 0
    repeat_previous_page: int = 0  # next N pages > 1 repeat the records of the previous page
    short_pages: int = 0  # next N pages > 1 drop their last record (short page before the end)
