"""Pacing against a small shared bucket over loopback: no 429, never into the reserve."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from pipelines.jambonz.client import RecentCallsClient, Scope, Window
from pipelines.jambonz.simulator import ACCOUNT_KEY, ACCOUNT_SID, Simulator
from tests.conftest import NOW

ACCOUNT = Scope.account(ACCOUNT_SID)
DAYS = [
    Window(datetime(2026, 11, d, tzinfo=UTC), datetime(2026, 11, d + 1, tzinfo=UTC))
    for d in (22, 23)
]


@pytest.mark.parametrize(
    ("limit", "window_s", "others", "concurrency"),
    [(30, 10.0, 0, 1), (30, 4.0, 15, 3)],
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
        with RecentCallsClient(
            sim.base_url, ACCOUNT_KEY, page_size=25, concurrency=concurrency
        ) as client:
            results = [client.fetch_window(ACCOUNT, window) for window in DAYS]
        log = sim.request_log
        count_429 = sim.count_429
    ours = [e for e in log if e["role"] != "other"] if log and "role" in log[0] else log
    assert len(ours) == sum(r.requests for r in results)
    assert len(ours) > 2 * (limit - reserve)  # more than two buckets of our share
    assert count_429 == 0
    assert min(e["remaining"] for e in ours) >= reserve
    assert sum(r.rate_limit_wait_s for r in results) > 0
    assert all(r.retries == {} for r in results)
