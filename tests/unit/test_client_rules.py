"""The client's request rules over httpx.MockTransport serving captured bodies: no network.

Behaviour the simulator can show is tested against it in tests/integration; here only what needs
instant time (backoff bounds) or byte-exact captures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipelines.jambonz.errors import (
    JambonzAuthError,
    JambonzBadRequestError,
    JambonzForbiddenError,
    JambonzUnavailableError,
    JambonzUnreachableError,
)
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.streams import Scope, Window
from pipelines.jambonz.transport import FIRST_CONTACT_S
from tests.conftest import Capture
from tests.helpers import fetch_window

KEY = "secret-key-do-not-print"
BASE = "http://jambonz.test"
ACCOUNT = "173c3dbf-acbb-4e31-9668-a4f3445cb971"
DAY = Window(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s

    def monotonic(self) -> float:
        return self.now


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], clock: FakeTime, **kw: object
) -> JambonzClient:
    return JambonzClient(
        BASE,
        KEY,
        _transport=httpx.MockTransport(handler),
        _sleep=clock.sleep,
        _monotonic=clock.monotonic,
        _random=lambda: 1.0,
        **kw,  # type: ignore[arg-type]
    )


def replay(cap: Capture, seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(cap.status, headers=cap.headers, content=cap.body)

    return handler


def test_request_shape_bounds_auth_and_user_agent(captures: dict[str, Capture]) -> None:
    seen: list[httpx.Request] = []
    empty = captures["55_acctA_empty_window.http"]
    with client_for(replay(empty, seen), FakeTime()) as client:
        result = fetch_window(client, Scope.account(ACCOUNT), DAY)
    assert (result.total, result.records, result.requests, result.repairs) == (0, [], 1, 0)
    (request,) = seen
    assert request.url.path == f"/v1/Accounts/{ACCOUNT}/RecentCalls"
    assert dict(request.url.params) == {
        "page": "1",
        "count": "500",
        "start": "2026-11-21T00:00:00.000000000Z",
        "end": "2026-11-21T23:59:59.999999999Z",
    }
    assert b"+" not in request.url.query
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "jambonz-warehouse" in request.headers["user-agent"]


@pytest.mark.parametrize("size", [24, 501, 0])
def test_page_size_is_validated(size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        JambonzClient(BASE, KEY, page_size=size)


@pytest.mark.parametrize(
    ("name", "error", "needles"),
    [
        ("65_auth_bad_token_401.http", JambonzAuthError, ["401", "JAMBONZ_API_KEY"]),
        ("64_sp_with_account_key_403.http", JambonzForbiddenError, ["403", "scope"]),
        ("48_acctA_page0.http", JambonzBadRequestError, ['"page" query arg']),
        ("68_malformed_account_sid.http", JambonzBadRequestError, ["invalid AccountsSid"]),
        ("43_acctA_filter_plus_encoded_2B1508.http", JambonzBadRequestError, ["error parsing"]),
    ],
)
def test_client_errors_fail_at_once_with_a_message_to_act_on(
    captures: dict[str, Capture],
    caplog: pytest.LogCaptureFixture,
    name: str,
    error: type[Exception],
    needles: list[str],
) -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime()
    caplog.set_level(logging.DEBUG)
    with client_for(replay(captures[name], seen), clock) as client, pytest.raises(error) as info:
        fetch_window(client, Scope.account(ACCOUNT), DAY)
    message = str(info.value)
    assert len(seen) == 1  # no retry
    assert clock.slept == []
    assert BASE in message
    assert ACCOUNT in message
    for needle in needles:
        assert needle in message
    assert KEY not in message
    assert info.value.__cause__ is None
    assert KEY not in caplog.text


def test_retries_are_bounded_by_attempts_with_capped_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeTime()
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"msg": "down"})

    with (
        client_for(handler, clock, max_attempts=5, backoff_base_s=1.0, backoff_cap_s=3.0) as c,
        pytest.raises(JambonzUnavailableError) as info,
    ):
        fetch_window(c, Scope.account(ACCOUNT), DAY)
    assert calls == 5
    # jitter pinned to its maximum: 1, 2, then the cap; the fallback pacing spaces nothing here
    backoffs = [s for s in clock.slept if s != pytest.approx(300 / 480)]
    assert backoffs == [1.0, 2.0, 3.0, 3.0]
    assert "5xx" in str(info.value)
    assert "503" in str(info.value)
    assert BASE in str(info.value)
    assert KEY not in str(info.value)
    assert caplog.text.count("retry") == 4


def test_retries_are_bounded_by_total_time() -> None:
    clock = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        client_for(
            handler,
            clock,
            max_attempts=100,
            max_retry_s=10.0,
            backoff_base_s=4.0,
            fallback_rate=None,
        ) as c,
        pytest.raises(JambonzUnavailableError, match="connect") as info,
    ):
        fetch_window(c, Scope.account(ACCOUNT), DAY)
    assert sum(clock.slept) <= 10.0
    assert "connection refused" in str(info.value)


def test_a_server_that_never_answered_is_given_up_within_first_contact_s() -> None:
    """A refused URL (a typo) gives up within FIRST_CONTACT_S of backoff, however long
    max_retry_s allows, as JambonzUnreachableError saying what was tried."""
    clock = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        client_for(handler, clock, max_attempts=100, backoff_base_s=4.0, fallback_rate=None) as c,
        pytest.raises(JambonzUnreachableError) as info,
    ):
        fetch_window(c, Scope.account(ACCOUNT), DAY)
    assert 0 < sum(clock.slept) <= FIRST_CONTACT_S
    assert "connection refused" in info.value.tried
    assert f"{len(clock.slept) + 1} attempts" in info.value.tried
    assert BASE not in info.value.tried  # the caller names the setting and the URL


def test_a_server_that_answered_once_is_retried_for_max_retry_s(
    captures: dict[str, Capture],
) -> None:
    """Once the server answered, a connection failure is a server down: retried as long as
    max_retry_s allows, past FIRST_CONTACT_S, and not called unreachable."""
    clock = FakeTime()
    empty = captures["55_acctA_empty_window.http"]
    answers = [replay(empty, [])]  # the first request is answered, every later one refused

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return answers.pop()(request)
        raise httpx.ConnectError("connection refused", request=request)

    with client_for(handler, clock, max_attempts=100, backoff_base_s=4.0, fallback_rate=None) as c:
        fetch_window(c, Scope.account(ACCOUNT), DAY)
        with pytest.raises(JambonzUnavailableError) as info:
            fetch_window(c, Scope.account(ACCOUNT), DAY)
    assert not isinstance(info.value, JambonzUnreachableError)
    assert sum(clock.slept) > FIRST_CONTACT_S


def test_repr_hides_the_key() -> None:
    with JambonzClient(BASE, KEY) as client:
        assert KEY not in repr(client)
        assert KEY not in repr(client.__dict__)
        assert BASE in repr(client)


def test_window_must_be_aware_and_non_empty() -> None:
    with JambonzClient(BASE, KEY) as client:
        with pytest.raises(ValueError, match="empty"):
            fetch_window(client, Scope.account(ACCOUNT), Window(DAY.end, DAY.start))
        naive = Window(datetime(2026, 11, 21), datetime(2026, 11, 22))
        with pytest.raises(ValueError, match="naive"):
            fetch_window(client, Scope.account(ACCOUNT), naive)
    assert DAY.end - DAY.start == timedelta(days=1)
