"""A local jambonz RecentCalls server and CDR generator, for demos and tests.

CONTRACT SKELETON: the public surface below is what the client tests, the Dagster tests and the
demo use. The implementation fills it in without changing these names.

It speaks RecentCalls as the deployed jambonz server does (see shared/docs/jambonz-recentcalls.md
and the captures in shared/docs/real-responses/): both routes, Bearer auth, the exact error shapes,
inclusive start/end bounds, attempt-time descending order, a total taken by a separate count before
the page, the rate-limit bucket with its headers, and fault knobs. It binds to loopback unless told
otherwise. It must never be imported by production code paths other than the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

# Identities taken from the captures, so simulator answers look like the real server's.
SERVICE_PROVIDER_SID = "43a6715f-583b-41e0-a086-b4f8cc677771"
ACCOUNT_SID = "173c3dbf-acbb-4e31-9668-a4f3445cb971"  # account A
OTHER_ACCOUNT_SID = "5b2a1c7e-9d44-4f0e-8a6b-2f1e3d4c5b6a"  # account B, same service provider
ACCOUNT_KEY = "sim-account-key-0001"  # may read ACCOUNT_SID only
OTHER_ACCOUNT_KEY = "sim-account-key-0002"  # may read OTHER_ACCOUNT_SID only
SERVICE_PROVIDER_KEY = "sim-sp-key-0001"  # may read both accounts and the SP route
ADMIN_KEY = "sim-admin-key-0001"  # may read anything

Dialect = Literal["server", "docs"]


@dataclass
class Faults:
    """Knobs a test turns on. Counters count down per affected RecentCalls request (any route)."""

    server_errors: int = 0  # next N requests answer 5xx
    server_error_status: int = 503
    server_error_html: bool = False  # HTML body instead of {"msg": ...}
    storm_429: int = 0  # next N requests answer 429 regardless of the bucket
    storm_429_retry_after: bool = True  # whether those 429s carry Retry-After
    retry_after_s: float = 1.0  # the Retry-After value sent with storm 429s
    slow_responses: int = 0  # next N requests wait slow_seconds before answering
    slow_seconds: float = 0.0
    truncated_bodies: int = 0  # next N 200 answers send half the body and close
    non_json_bodies: int = 0  # next N 200 answers send an HTML page with status 200
    reset_connections: int = 0  # next N requests: the socket is closed without an answer
    landing_per_request: int = 0  # after each data query, N new CDRs land inside the queried range
    repeat_previous_page: int = 0  # next N pages > 1 repeat the records of the previous page
    short_pages: int = 0  # next N pages > 1 drop their last record (short page before the end)


class Simulator:
    """A RecentCalls server on 127.0.0.1 (a free port unless `port` is given).

    Args:
        seed: makes every generated CDR deterministic.
        calls_per_day: average attempts per account per UTC day (a daily curve shapes the hours).
        dialect: "server" (what jambonz sends) or "docs" (what its docs page shows).
        rate_limit: (limit, window_seconds) of the one shared bucket; None sends no RateLimit
            headers and never answers 429 (a self-hosted server without a limiter).
        now: the simulator clock's start; None = the machine's clock, running. A CDR is visible
            once its call ended (terminated_at + buffer <= clock).
        retention_days: calls attempted before clock - retention are gone from the API.
        host, port: where to listen; host defaults to 127.0.0.1.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_day: int = 1000,
        dialect: Dialect = "server",
        rate_limit: tuple[int, float] | None = (600, 300.0),
        now: datetime | None = None,
        retention_days: int = 30,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        raise NotImplementedError

    # lifecycle
    def start(self) -> Simulator:  # serve in a background thread; returns self
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:  # e.g. "http://127.0.0.1:54321"
        raise NotImplementedError

    # knobs
    faults: Faults

    def set_clock(self, now: datetime, *, frozen: bool = True) -> None:
        """Set the clock; frozen=True stops it until the next set/advance."""
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        raise NotImplementedError

    def set_rate_limit(self, limit: int, window_s: float) -> None:
        """Replace the bucket (a fresh, full window starts now)."""
        raise NotImplementedError

    def consume(self, n: int) -> None:
        """Spend n requests of the bucket as another client (the operator's web UI) would."""
        raise NotImplementedError

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Inject raw records as stored (server-dialect shape, attempted_at as RFC 3339 string).

        For malformed-record and edge-time tests; they are served verbatim in the server dialect.
        """
        raise NotImplementedError

    # ground truth for tests
    def calls(
        self, sid: str, start: datetime, end: datetime, *, route: str = "account"
    ) -> list[dict[str, Any]]:
        """Every record visible now with start <= attempted_at < end, as the API would send it.

        route: "account" (sid = account sid) or "service_provider".
        """
        raise NotImplementedError

    # observation
    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One entry per RecentCalls request: {path, params, status, remaining}."""
        raise NotImplementedError

    @property
    def count_429(self) -> int:
        raise NotImplementedError
