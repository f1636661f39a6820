"""The rules behind operation between runs: retry delays, the freshness deadline, dead processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipelines.dead_runs import _started_at
from pipelines.freshness import deadline_minutes
from pipelines.retries import MAX_DELAY_S, retry_delay
from pipelines.settings import load_settings


def test_retry_delays_double_from_the_first_and_are_capped() -> None:
    assert [retry_delay(n, 60.0) for n in range(5)] == [60.0, 120.0, 240.0, 480.0, MAX_DELAY_S]
    assert retry_delay(1000, 60.0) == MAX_DELAY_S
    assert retry_delay(3, 0.0) == 0.0


@pytest.mark.parametrize(
    ("settle", "margin", "deadline"),
    [("60", "", 180), ("90", "45", 135), ("1380", "600", 23 * 60 + 59)],
)
def test_the_freshness_deadline_is_settle_plus_margin_within_the_day(
    settle: str, margin: str, deadline: int
) -> None:
    env = {"SYNC_SETTLE_MINUTES": settle, "SYNC_FRESHNESS_MARGIN_MINUTES": margin}
    assert deadline_minutes(load_settings(env)) == deadline


def test_a_live_process_has_a_start_time_and_a_gone_one_has_none() -> None:
    started = _started_at(os.getpid())
    assert started is not None
    assert started <= time.time()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped: the PID names no process
    assert _started_at(child.pid) is None


def test_an_exited_child_not_yet_reaped_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # a zombie until waited for: wait for its exit without reaping it (WNOWAIT)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        assert _started_at(child.pid) is None
    finally:
        child.wait()
