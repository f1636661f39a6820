"""Pacing over loopback: a small shared bucket draws no 429 and keeps the reserve; a 429's
Retry-After outranks the spent bucket its RateLimit headers show (a proxy, a restarted limiter).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from pipelines.jambonz.pacing import RESET_MARGIN_S
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.simulator import ACCOUNT_KEY, ACCOUNT_SID, Simulator
from pipelines.jambonz.streams import Scope, Window
from tests.conftest import NOW
from tests.helpers import fetch_window

ACCOUNT = Scope.account(ACCOUNT_SID)
DAYS = [
    Window(datetime(2026, 11, d, tzinfo=UTC), datetime(2026, 11, d + 1, tzinfo=UTC))
    for d in (22, 23)
]


@pytest.mark.parametrize(
    ("limit", "window_s", "others", "concurrency"),
    [(30, 5.0, 0, 1), (30, 4.0, 15, 3)],
    ids=["alone", "another-client-and-concurrency"],
)
def test_several_buckets_of_requests_draw_no_429_and_keep_the_reserve(
    limit: int, window_s: float, others: int, concurrency: int
) -> None:
    reserve = math.ceil(limit * 0.2)
    with Simulator(seed=3, calls_per_day=700, now=NOW) as sim:
        sim.set_rate_limit(limit, window_s)
        if others:
            # The operator's web UI spends half the bucket before we start: our first answer shows
            # it. (Spending between two of our answers is invisible until the next one: no client
            # can keep the reserve against that, so it is not asserted.)
            sim.consume(others)
        with JambonzClient(
            sim.base_url, ACCOUNT_KEY, page_size=25, concurrency=concurrency
        ) as client:
            results = [fetch_window(client, ACCOUNT, window) for window in DAYS]
        log = sim.request_log
        count_429 = sim.count_429
    ours = [e for e in log if e["role"] != "other"] if log and "role" in log[0] else log
    assert len(ours) == sum(r.requests for r in results)
    assert len(ours) > 2 * (limit - reserve)  # more than two buckets of our share
    assert count_429 == 0
    assert min(e["remaining"] for e in ours) >= reserve
    assert sum(r.rate_limit_wait_s for r in results) > 0
    assert all(r.retries == {} for r in results)


class FakeTime:
    """The client's clock: its waits are recorded, not slept, so a 290 s wait costs nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("retry_after", "storm", "waits"),
    [(True, 4, [1.0] * 4), (False, 1, [290.0 + RESET_MARGIN_S])],
    ids=["retry-after-1", "no-retry-after"],
)
def test_a_429s_retry_after_outranks_its_spent_ratelimit_headers(
    simulator: Simulator, retry_after: bool, storm: int, waits: list[float]
) -> None:
    simulator.faults.storm_429 = storm
    simulator.faults.storm_429_retry_after = retry_after
    simulator.faults.retry_after_s = 1.0
    simulator.faults.storm_429_reset_s = 290.0  # RateLimit-Remaining: 0, RateLimit-Reset: 290
    clock = FakeTime()
    with JambonzClient(
        simulator.base_url, ACCOUNT_KEY, _sleep=clock.sleep, _monotonic=clock.monotonic
    ) as client:  # the default bounds: max_retry_s 300
        result = fetch_window(client, ACCOUNT, DAYS[0])
    assert result.retries == {"429": storm}
    assert simulator.count_429 == storm
    assert clock.slept == [pytest.approx(w) for w in waits]
    assert result.rate_limit_wait_s == pytest.approx(sum(waits))
    truth = simulator.calls(ACCOUNT_SID, DAYS[0].start, DAYS[0].end)
    assert result.total == len(truth) == len(result.records) > 0
