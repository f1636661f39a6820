"""Pacing against jambonz's one shared rate-limit bucket, leaving a reserve to everyone else.

The bucket (600 requests / 5 min by default) is shared by every client of the server, the
operator's web UI included, and the limiter runs before authentication. So the rule is: never send
the request that would take the bucket's Remaining below ceil(limit * reserve), counting our own
requests still in flight; when the budget is spent, wait for the window's reset (RateLimit-Reset is
a ceiling in whole seconds, plus a small margin). Without RateLimit headers pace evenly to a
fallback rate, keeping the same reserve. A 429's Retry-After takes precedence over its RateLimit
headers (as the IETF RateLimit header fields draft says): a proxy or a restarted limiter may answer
Remaining 0 with a far Reset while asking for a retry in a second, so after such a 429 nothing is
sent until Retry-After has passed, then one request probes the bucket afresh. It must never do I/O
itself or see the API key.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# share of the bucket left to others: the one default (JAMBONZ_RATE_LIMIT_RESERVE)
DEFAULT_RESERVE = 0.2
RESET_MARGIN_S = 0.25  # RateLimit-Reset is rounded up to whole seconds; this covers clock skew


@dataclass(frozen=True)
class RateInfo:
    """The RateLimit-* headers of one response."""

    limit: int
    remaining: int
    reset_s: float  # seconds until the bucket's window resets


def parse_rate_headers(headers: Mapping[str, str]) -> RateInfo | None:
    """RateLimit-Limit/-Remaining/-Reset, or None when absent or unreadable."""
    try:
        limit = headers.get("ratelimit-limit") or headers.get("RateLimit-Limit")
        remaining = headers.get("ratelimit-remaining") or headers.get("RateLimit-Remaining")
        reset = headers.get("ratelimit-reset") or headers.get("RateLimit-Reset")
        if limit is None or remaining is None or reset is None:
            return None
        info = RateInfo(int(float(limit)), int(float(remaining)), float(reset))
    except ValueError:
        return None
    if info.limit <= 0 or info.reset_s < 0 or not math.isfinite(info.reset_s):
        return None
    return info


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
    ceiling = min(cap_s, base_s * float(2 ** min(attempt, 62)))
    return float(rand()) * ceiling


class Pacer:
    """Decides when the next request may go. Thread-safe; one per client, shared by its threads.

    acquire() blocks until a request may be sent and returns the seconds it slept for the bucket;
    every acquire() must be paired with one release(info) when the answer (or failure) is in.
    """

    def __init__(
        self,
        *,
        reserve: float = DEFAULT_RESERVE,
        fallback_rate: tuple[int, float] | None = (600, 300.0),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        margin_s: float = RESET_MARGIN_S,
    ) -> None:
        if not 0.0 <= reserve < 1.0:
            raise ValueError(f"reserve must be in [0, 1), got {reserve}")
        if fallback_rate is not None and (fallback_rate[0] < 1 or fallback_rate[1] <= 0):
            raise ValueError(f"fallback_rate must be (requests >= 1, seconds > 0): {fallback_rate}")
        self.reserve = reserve
        self.fallback_rate = fallback_rate
        self._sleep = sleep
        self._monotonic = monotonic
        self._margin = margin_s
        self._cond = threading.Condition()
        self.in_flight = 0
        self.mode: str = "unknown"  # "unknown" until a response: then "headers" or "fallback"
        self.limit: int | None = None
        self.remaining: int | None = None  # None: not known in the current window
        self.reset_at: float | None = None
        self.blocked_until = 0.0  # after a 429
        self._next_slot = 0.0  # fallback spacing

    def decide(self, now: float) -> float | None:
        """0.0 = send now; > 0 = sleep that long first; None = wait for an in-flight answer.

        Call with the lock held (acquire does); exposed for tests.
        """
        if now < self.blocked_until:
            return self.blocked_until - now
        if self.mode == "headers":
            assert self.limit is not None
            if self.reset_at is not None and now >= self.reset_at:
                self.remaining = None  # a fresh window: probe it with one request
                self.reset_at = None
            if self.remaining is None or self.reset_at is None:  # set and cleared together
                return 0.0 if self.in_flight == 0 else None
            if self.remaining - self.in_flight - 1 >= math.ceil(self.limit * self.reserve):
                return 0.0
            return self.reset_at - now
        if self.mode == "fallback":
            if self.fallback_rate is None:
                return 0.0
            return max(self._next_slot - now, 0.0)
        # Nothing known yet: one request at a time until the first answer tells us the rules.
        return 0.0 if self.in_flight == 0 else None

    def acquire(self) -> float:
        waited = 0.0
        with self._cond:
            while True:
                now = self._monotonic()
                wait = self.decide(now)
                if wait == 0.0:
                    self.in_flight += 1
                    if self.fallback_rate is not None and self.mode != "headers":
                        n, window = self.fallback_rate
                        interval = window / max(1, math.floor(n * (1.0 - self.reserve)))
                        self._next_slot = max(self._next_slot, now) + interval
                    return waited
                if wait is None:
                    self._cond.wait()
                    continue
                self._cond.release()
                try:
                    self._sleep(wait)
                finally:
                    self._cond.acquire()
                waited += wait

    def release(
        self, info: RateInfo | None, *, answered: bool = True, retry_after_s: float | None = None
    ) -> None:
        """Record one request's end; answered=False (reset, timeout): nothing to learn.

        retry_after_s: the answer was a 429 with this Retry-After: nothing is sent until it has
        passed and what was known of the window is forgotten (see the module docstring). Done
        under the lock with the release, so no other thread acts on the 429's Remaining/Reset.
        """
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            if answered:
                now = self._monotonic()
                self._learn(info, now)
                if retry_after_s is not None:
                    self.blocked_until = max(self.blocked_until, now + retry_after_s)
                    self.remaining = self.reset_at = None
            self._cond.notify_all()

    def _learn(self, info: RateInfo | None, now: float) -> None:
        if info is None:
            if self.mode != "headers":
                self.mode = "fallback"
            return
        self.mode = "headers"
        self.limit = info.limit
        reset_at = now + info.reset_s + self._margin
        if self.remaining is None or self.reset_at is None or reset_at > self.reset_at + 1.5:
            # first word on this window, or a newer window than the one we knew
            self.remaining, self.reset_at = info.remaining, reset_at
        elif reset_at < self.reset_at - 1.5:
            return  # a late answer from the previous window: stale
        else:
            # answers of one window can arrive out of order: the lowest Remaining is the truth
            self.remaining = min(self.remaining, info.remaining)
            self.reset_at = min(self.reset_at, reset_at)

    def on_429(self, wait_s: float) -> None:
        """A 429 got through anyway: send nothing for wait_s (its Retry-After, else a backoff)."""
        with self._cond:
            self.blocked_until = max(self.blocked_until, self._monotonic() + wait_s)
            self._cond.notify_all()
