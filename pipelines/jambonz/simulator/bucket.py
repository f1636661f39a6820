"""The rate limiter jambonz runs in front of RecentCalls: express-rate-limit's fixed window.

One shared counter per window, reset when the window ends, and the `RateLimit-*` headers the
server sends with every answer. It only counts: it never sleeps, never answers a request and
keeps no lock (the server calls it under its own).
"""

from __future__ import annotations

import math
import time


class _Bucket:
    """express-rate-limit's fixed window: one shared counter, reset when the window ends."""

    def __init__(self, limit: int, window_s: float, *, start_now: bool) -> None:
        self.limit = limit
        self.window_s = window_s
        self.hits = 0
        self.reset_at: float | None = time.monotonic() + window_s if start_now else None

    def _roll(self, now: float) -> None:
        if self.reset_at is None or now >= self.reset_at:
            self.hits = 0
            self.reset_at = now + self.window_s

    def hit(self, n: int = 1) -> tuple[bool, int, int]:
        """Count n requests; (allowed, remaining, seconds until reset)."""
        now = time.monotonic()
        self._roll(now)
        self.hits += n
        assert self.reset_at is not None
        reset = max(0, math.ceil(self.reset_at - now))
        return self.hits <= self.limit, max(0, self.limit - self.hits), reset

    def headers(self, remaining: int, reset: int) -> list[tuple[str, str]]:
        return [
            ("RateLimit-Policy", f"{self.limit};w={math.ceil(self.window_s)}"),
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(remaining)),
            ("RateLimit-Reset", str(reset)),
        ]
