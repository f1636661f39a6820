"""Pacer decisions, Retry-After and backoff with a fake clock: no real time passes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.jambonz.pacing import (
    RESET_MARGIN_S,
    Pacer,
    RateInfo,
    backoff_delay,
    parse_rate_headers,
    parse_retry_after,
)
from tests.conftest import Capture


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(clock: FakeClock, **kw: object) -> Pacer:
    return Pacer(sleep=clock.sleep, monotonic=clock.monotonic, **kw)  # type: ignore[arg-type]


def test_rate_headers_from_captures(captures: dict[str, Capture]) -> None:
    assert parse_rate_headers(captures["80_ratelimit20_req01_normal_headers.http"].headers) == (
        RateInfo(20, 19, 60.0)
    )
    assert parse_rate_headers(captures["82_ratelimit20_req21_429.http"].headers) == (
        RateInfo(20, 0, 60.0)
    )
    assert parse_rate_headers({}) is None
    assert (
        parse_rate_headers(
            {"ratelimit-limit": "x", "ratelimit-remaining": "1", "ratelimit-reset": "1"}
        )
        is None
    )


def test_sends_until_the_reserve_then_waits_for_the_reset() -> None:
    clock = FakeClock()
    p = pacer(clock, reserve=0.2)  # limit 30 -> reserve 6
    sent = 0
    remaining = 30
    while clock.now < 1000.0 + 1:  # everything within the first window
        assert p.acquire() == 0.0
        sent += 1
        remaining -= 1
        p.release(RateInfo(30, remaining, 10.0))
        if p.decide(clock.now) != 0.0:
            break
    assert remaining == 6  # stopped exactly at the reserve: 24 of 30 sent
    assert sent == 24
    waited = p.acquire()  # the next one waits for the reset plus the margin
    assert waited == pytest.approx(10.0 + RESET_MARGIN_S)
    assert clock.slept == [pytest.approx(10.0 + RESET_MARGIN_S)]


def test_remaining_spent_by_others_is_respected() -> None:
    clock = FakeClock()
    p = pacer(clock, reserve=0.2)
    p.acquire()
    p.release(RateInfo(30, 7, 5.0))  # someone else used 22
    assert p.acquire() == 0.0  # 7 -> 6 keeps the reserve
    p.release(RateInfo(30, 6, 5.0))
    assert p.decide(clock.now) == pytest.approx(5.0 + RESET_MARGIN_S)


def test_in_flight_requests_count_against_the_budget() -> None:
    clock = FakeClock()
    p = pacer(clock, reserve=0.2)
    p.acquire()
    p.release(RateInfo(10, 5, 30.0))  # reserve 2: room for 3 more
    for _ in range(3):
        assert p.decide(clock.now) == 0.0
        p.acquire()
    assert p.in_flight == 3
    assert p.decide(clock.now) == pytest.approx(30.0 + RESET_MARGIN_S)


def test_unknown_state_probes_with_one_request_at_a_time() -> None:
    clock = FakeClock()
    p = pacer(clock)
    assert p.decide(clock.now) == 0.0
    p.acquire()
    assert p.decide(clock.now) is None  # wait for the first answer to learn the rules
    p.release(RateInfo(600, 599, 300.0))
    assert p.decide(clock.now) == 0.0


def test_after_the_reset_one_probe_then_fresh_numbers() -> None:
    clock = FakeClock()
    p = pacer(clock, reserve=0.2)
    p.acquire()
    p.release(RateInfo(10, 2, 3.0))
    assert p.decide(clock.now) == pytest.approx(3.0 + RESET_MARGIN_S)
    clock.now += 4.0
    assert p.decide(clock.now) == 0.0
    p.acquire()
    assert p.decide(clock.now) is None
    p.release(RateInfo(10, 9, 10.0))
    assert p.decide(clock.now) == 0.0


def test_out_of_order_answers_keep_the_lowest_remaining() -> None:
    clock = FakeClock()
    p = pacer(clock)
    p.acquire()
    p.release(RateInfo(100, 50, 20.0))
    p.release(RateInfo(100, 40, 20.0))
    p.release(RateInfo(100, 45, 20.0))  # arrived late
    assert p.remaining == 40


def test_fallback_rate_keeps_the_reserve_and_spaces_evenly() -> None:
    clock = FakeClock()
    p = pacer(clock, reserve=0.2, fallback_rate=(600, 300.0))  # 480 per 300 s -> 0.625 s apart
    p.acquire()
    p.release(None)
    waits = []
    for _ in range(4):
        waits.append(p.acquire())
        p.release(None)
    assert waits == [pytest.approx(0.625)] * 4
    clock.now += 100.0  # idle time is not banked beyond the next slot
    assert p.acquire() == 0.0


def test_no_fallback_means_no_pacing() -> None:
    clock = FakeClock()
    p = pacer(clock, fallback_rate=None)
    for _ in range(50):
        assert p.acquire() == 0.0
        p.release(None)
    assert clock.slept == []


def test_a_429_blocks_for_its_retry_after() -> None:
    clock = FakeClock()
    p = pacer(clock)
    p.acquire()
    p.release(RateInfo(600, 500, 200.0))
    p.on_429(2.0)
    assert p.acquire() == pytest.approx(2.0)  # a storm 429: Retry-After, not the full window


def test_a_429s_retry_after_outranks_its_ratelimit_reset() -> None:
    clock = FakeClock()
    p = pacer(clock)
    p.acquire()
    p.release(RateInfo(600, 500, 200.0))
    p.acquire()
    # a proxy or a restarted limiter: a spent bucket of its own, but Retry-After: 1
    p.release(RateInfo(600, 0, 290.0), retry_after_s=1.0)
    p.on_429(1.0)  # what the client's retry loop does next
    assert p.acquire() == pytest.approx(1.0)
    assert clock.slept == [pytest.approx(1.0)]
    assert p.decide(clock.now) is None  # then one probe alone: the window is not known
    p.release(RateInfo(600, 480, 120.0))  # its answer says what the bucket really is
    assert p.decide(clock.now) == 0.0


def test_a_429_without_retry_after_waits_for_its_ratelimit_reset() -> None:
    clock = FakeClock()
    p = pacer(clock)
    p.acquire()
    p.release(RateInfo(600, 500, 200.0))
    p.acquire()
    p.release(RateInfo(600, 0, 290.0))
    p.on_429(290.0 + RESET_MARGIN_S)  # the client's wait: the reset its headers give
    assert p.acquire() == pytest.approx(290.0 + RESET_MARGIN_S)


def test_reserve_bounds() -> None:
    with pytest.raises(ValueError, match="reserve"):
        Pacer(reserve=1.0)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 27, 11, 38, 8, tzinfo=UTC)
    assert parse_retry_after("60") == 60.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Fri, 27 Nov 2026 11:38:38 GMT", now) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 11:37:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def test_backoff_is_full_jitter_capped_exponential() -> None:
    assert backoff_delay(0, 0.5, 30.0, lambda: 1.0) == 0.5
    assert backoff_delay(3, 0.5, 30.0, lambda: 1.0) == 4.0
    assert backoff_delay(10, 0.5, 30.0, lambda: 1.0) == 30.0
    assert backoff_delay(1000, 0.5, 30.0, lambda: 1.0) == 30.0
    assert backoff_delay(3, 0.5, 30.0, lambda: 0.0) == 0.0
    assert all(0.0 <= backoff_delay(n, 0.5, 30.0) <= min(30.0, 0.5 * 2**n) for n in range(12))
