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

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

MAX_DELAY_S = 900.0  # the longest pause between two attempts of a step


class TransientFailure(dg.Failure):
    """A failure that may pass by itself: the step is tried again after a backoff."""


def retry_delay(attempt: int, first_delay_s: float) -> float:
    """Seconds before attempt `attempt + 1` (attempt counts from 0): doubling, capped."""
    return min(first_delay_s * 2.0 ** min(attempt, 30), MAX_DELAY_S)


@contextmanager
def retrying(
    context: dg.AssetExecutionContext, retries: int, first_delay_s: float
) -> Iterator[None]:
    """Turn a TransientFailure raised inside into a retry of the step, `retries` times at most;
    the last one fails the step with the cause's own message."""
    try:
        yield
    except TransientFailure as exc:
        attempt = context.retry_number
        message = exc.description or str(exc)
        if attempt >= retries:
            tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
            raise dg.Failure(description=f"{message} (gave up after {tries})") from None
        wait = retry_delay(attempt, first_delay_s)
        context.log.warning(
            f"{message}; attempt {attempt + 1} of {retries + 1}, trying again in {wait:g} s"
        )
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from exc
