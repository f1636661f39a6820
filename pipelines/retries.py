"""When a step tries again: the DuckDB file held by another process, or jambonz unavailable.

Both pass by themselves (a notebook is closed, a server comes back), so a step that meets one
asks Dagster to run it again after a backoff (`RetryRequested`: the UI shows the step "up for
retry" with the cause, the holder of the file named) instead of skipping the day until the next
schedule tick. The wait is a sleep in the run's process, not a poll. Configuration mistakes (a
refused key, an unwritable path) fail at once: trying again cannot fix them. A run whose process
died is not this module's business: the `dead_runs` sensor marks it failed and Dagster's run
retries launch it again (dagster.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg

T = TypeVar("T")

MAX_DELAY_S = 900.0  # the longest pause between two attempts of a step


class TransientFailure(dg.Failure):
    """A failure that may pass by itself: the step is tried again after a backoff."""


def retry_delay(attempt: int, first_delay_s: float) -> float:
    """Seconds before attempt `attempt + 1` (attempt counts from 0): doubling, capped."""
    return min(first_delay_s * 2.0 ** min(attempt, 30), MAX_DELAY_S)


def _next_wait(
    context: dg.AssetExecutionContext,
    exc: TransientFailure,
    attempt: int,
    retries: int,
    delay: float,
) -> float:
    """Seconds to wait before trying again after `exc` on attempt `attempt` (from 0), said in the
    log; after the last attempt, the step's Failure with the cause's own message."""
    message = exc.description or str(exc)
    if attempt >= retries:
        tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
        raise dg.Failure(description=f"{message} (gave up after {tries})") from None
    wait = retry_delay(attempt, delay)
    context.log.warning(
        f"{message}; attempt {attempt + 1} of {retries + 1}, trying again in {wait:g} s"
    )
    return wait


@contextmanager
def retrying(
    context: dg.AssetExecutionContext, retries: int, first_delay_s: float
) -> Iterator[None]:
    """Turn a TransientFailure raised inside into a retry of the step, `retries` times at most;
    the last one fails the step with the cause's own message."""
    try:
        yield
    except TransientFailure as exc:
        wait = _next_wait(context, exc, context.retry_number, retries, first_delay_s)
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from exc


def retrying_in_place(
    context: dg.AssetExecutionContext, retries: int, first_delay_s: float, attempt: Callable[[], T]
) -> T:
    """`attempt()` again after the same backoff when it raises a TransientFailure, `retries` times
    at most, inside the step: for one day of a range, whose committed days a step retry would
    fetch again (pipelines/days.py)."""
    tried = 0
    while True:
        try:
            return attempt()
        except TransientFailure as exc:
            # a backoff before the next attempt, as Dagster waits before a step retry
            time.sleep(_next_wait(context, exc, tried, retries, first_delay_s))
            tried += 1
