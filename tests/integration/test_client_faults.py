"""Every fault knob of the simulator: recovery with nothing lost, or a clear error."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pipelines.jambonz.errors import (
    JambonzAuthError,
    JambonzBadRequestError,
    JambonzForbiddenError,
    JambonzUnavailableError,
    JambonzUnreachableError,
)
from pipelines.jambonz.pager import JambonzClient, WindowResult
from pipelines.jambonz.simulator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    OTHER_ACCOUNT_SID,
    SERVICE_PROVIDER_SID,
    Simulator,
)
from pipelines.jambonz.streams import Scope, Window
from tests.helpers import fetch_window, record_identity

DAY = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
ACCOUNT = Scope.account(ACCOUNT_SID)
FAST = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "page_size": 25}


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert ACCOUNT_KEY not in caplog.text


def fetch(sim: Simulator, **kw: object) -> WindowResult:
    opts = {**FAST, **kw}
    with JambonzClient(sim.base_url, ACCOUNT_KEY, **opts) as client:  # type: ignore[arg-type]
        return fetch_window(client, ACCOUNT, DAY)


def assert_complete(sim: Simulator, result: WindowResult) -> None:
    got = Counter(record_identity(r) for r in result.records)
    truth = {record_identity(r) for r in sim.calls(ACCOUNT_SID, DAY.start, DAY.end)}
    assert max(got.values()) == 1
    assert set(got) == truth
    assert result.total == len(truth)


@pytest.mark.parametrize("html", [False, True])
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(
    simulator: Simulator, log: pytest.LogCaptureFixture, status: int, html: bool
) -> None:
    simulator.faults.server_errors = 3
    simulator.faults.server_error_status = status
    simulator.faults.server_error_html = html
    result = fetch(simulator)
    assert_complete(simulator, result)
    assert result.retries == {"5xx": 3}
    assert result.requests == result.pages + 3
    assert log.text.count("retry") == 3


@pytest.mark.parametrize("retry_after", [True, False])
def test_a_429_storm_is_waited_out(simulator: Simulator, retry_after: bool) -> None:
    simulator.faults.storm_429 = 2
    simulator.faults.storm_429_retry_after = retry_after
    simulator.faults.retry_after_s = 0.3
    result = fetch(simulator)
    assert_complete(simulator, result)
    assert result.retries == {"429": 2}
    if retry_after:  # the request after each 429 came no sooner than its Retry-After said
        assert min(retry_after_gaps(simulator)) >= 0.3
    assert simulator.count_429 == 2


def retry_after_gaps(simulator: Simulator) -> list[float]:
    """Seconds between each 429 the simulator sent and the next request it got (its clock, so
    a loaded machine only makes them longer)."""
    log = simulator.request_log
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(log) if a["status"] == 429]
    assert gaps, "no 429 was followed by a request"
    return gaps


def test_slow_responses_beyond_the_timeout_are_retried(simulator: Simulator) -> None:
    simulator.faults.slow_responses = 2
    simulator.faults.slow_seconds = 1.0
    result = fetch(simulator, timeout_s=0.25)
    assert_complete(simulator, result)
    assert result.retries == {"timeout": 2}


@pytest.mark.parametrize(
    ("knob", "causes"),
    [
        ("truncated_bodies", {"truncated", "reset", "bad_body"}),
        ("non_json_bodies", {"bad_body"}),
        ("reset_connections", {"reset", "truncated"}),
    ],
)
def test_broken_answers_are_retried(simulator: Simulator, knob: str, causes: set[str]) -> None:
    setattr(simulator.faults, knob, 2)
    result = fetch(simulator)
    assert_complete(simulator, result)
    assert sum(result.retries.values()) == 2
    assert set(result.retries) <= causes


@pytest.mark.parametrize("knob", ["repeat_previous_page", "short_pages"])
def test_shifted_pages_are_detected_and_repaired(simulator: Simulator, knob: str) -> None:
    setattr(simulator.faults, knob, 2)
    result = fetch(simulator)
    assert_complete(simulator, result)
    assert result.repairs > 0
    assert result.retries == {}


def test_landing_is_repaired(simulator: Simulator) -> None:
    simulator.faults.landing_per_request = 1
    with JambonzClient(simulator.base_url, ACCOUNT_KEY, **FAST) as client:  # type: ignore[arg-type]
        result = fetch_window(client, ACCOUNT, DAY)
        simulator.faults.landing_per_request = 0
    truth = {record_identity(r) for r in simulator.calls(ACCOUNT_SID, DAY.start, DAY.end)}
    got = [record_identity(r) for r in result.records]
    assert len(got) == len(set(got))
    assert result.repairs > 0
    # the one call landed by the last request arrived after its count and is not yet anyone's
    assert set(got) <= truth
    assert len(truth - set(got)) <= 1
    assert len(got) >= result.total


def test_retries_exhausted_name_the_cause_not_the_key(
    simulator: Simulator, log: pytest.LogCaptureFixture
) -> None:
    simulator.faults.server_errors = 10
    with pytest.raises(JambonzUnavailableError) as info:
        fetch(simulator, max_attempts=3)
    message = str(info.value)
    assert "5xx" in message
    assert "503" in message
    assert simulator.base_url in message
    assert ACCOUNT_SID in message
    assert ACCOUNT_KEY not in message
    assert info.value.__cause__ is None
    assert simulator.faults.server_errors == 7


def test_a_server_nobody_answers_is_unreachable_saying_what_it_tried(
    log: pytest.LogCaptureFixture,
) -> None:
    with Simulator(seed=1, calls_per_day=10) as sim:
        base = sim.base_url
    with (
        pytest.raises(JambonzUnreachableError, match="Connection refused") as info,
        JambonzClient(base, ACCOUNT_KEY, max_attempts=2, **FAST) as client,  # type: ignore[arg-type]
    ):
        fetch_window(client, ACCOUNT, DAY)
    assert base in str(info.value)
    assert info.value.tried.startswith("2 attempts in ")
    assert ACCOUNT_KEY not in str(info.value)


def test_401_tells_which_setting_to_fix(
    simulator: Simulator, log: pytest.LogCaptureFixture
) -> None:
    bad_key = "not-the-key-0000"
    with (
        JambonzClient(simulator.base_url, bad_key) as client,
        pytest.raises(JambonzAuthError) as info,
    ):
        fetch_window(client, ACCOUNT, DAY)
    message = str(info.value)
    assert "401" in message
    assert "JAMBONZ_API_KEY" in message
    assert simulator.base_url in message
    assert ACCOUNT_SID in message
    assert bad_key not in message
    assert bad_key not in repr(client)
    assert bad_key not in log.text
    assert len(simulator.request_log) == 1


@pytest.mark.parametrize(
    "scope",
    [Scope.account(OTHER_ACCOUNT_SID), Scope.service_provider(SERVICE_PROVIDER_SID)],
)
def test_403_names_the_scope_the_key_may_not_read(
    simulator: Simulator, log: pytest.LogCaptureFixture, scope: Scope
) -> None:
    with (
        JambonzClient(simulator.base_url, ACCOUNT_KEY) as client,
        pytest.raises(JambonzForbiddenError) as info,
    ):
        fetch_window(client, scope, DAY)
    message = str(info.value)
    assert "403" in message
    assert scope.sid in message
    assert "scope" in message
    assert simulator.base_url in message
    assert ACCOUNT_KEY not in message
    assert len(simulator.request_log) == 1


def test_400_carries_the_server_message(
    simulator: Simulator, log: pytest.LogCaptureFixture
) -> None:
    with (
        JambonzClient(simulator.base_url, ACCOUNT_KEY) as client,
        pytest.raises(JambonzBadRequestError) as info,
    ):
        fetch_window(client, Scope.account("not-a-sid"), DAY)
    message = str(info.value)
    assert "invalid AccountsSid format" in message
    assert "not-a-sid" in message
    assert simulator.base_url in message
    assert ACCOUNT_KEY not in message
    assert ACCOUNT_KEY not in repr(client)
