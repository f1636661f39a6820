"""Pure paging pieces: time bounds, envelopes from the real captures, identities, splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipelines.jambonz.pager import split_points
from pipelines.jambonz.streams import (
    NS_PER_S,
    BadBodyError,
    format_ns,
    parse_envelope,
    parse_instant,
    to_ns,
)
from pipelines.jambonz.transport import error_message, is_query_parse_error
from tests.conftest import Capture

DAY = datetime(2026, 11, 21, tzinfo=UTC)


def test_bounds_are_rfc3339_z_with_nanosecond_inclusive_end() -> None:
    # the transport sends start as format_ns(start) and end as format_ns(end - 1)
    assert format_ns(to_ns(DAY)) == "2026-11-21T00:00:00.000000000Z"
    assert format_ns(to_ns(DAY + timedelta(days=1)) - 1) == "2026-11-21T23:59:59.999999999Z"
    odd = datetime(2026, 11, 21, 10, 0, 0, 5, tzinfo=UTC)
    assert format_ns(to_ns(odd) - 1) == "2026-11-21T10:00:00.000004999Z"


def test_bounds_of_an_offset_window_are_sent_in_utc_without_plus() -> None:
    plus2 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    text = format_ns(to_ns(plus2))
    assert text == "2026-11-21T02:00:00.000000000Z"
    assert "+" not in text


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_ns(datetime(2026, 11, 21))


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2026-11-21T01:22:44Z", 0),
        ("2026-11-21T01:22:44.5Z", 500_000_000),
        ("2026-11-21T01:22:44.08Z", 80_000_000),
        ("2026-11-21T01:22:44.082Z", 82_000_000),
        ("2026-11-21T01:22:44.123456789Z", 123_456_789),
        ("2026-11-21T03:22:44.1+02:00", 100_000_000),
        ("2026-11-20T23:22:44-02:00", 0),
    ],
)
def test_attempted_at_with_any_fraction_and_offset(text: str, expected_ns: int) -> None:
    base = to_ns(datetime(2026, 11, 21, 1, 22, 44, tzinfo=UTC))
    assert parse_instant(text) == base + expected_ns


def test_attempted_at_as_epoch_seconds_docs_dialect() -> None:
    assert parse_instant(1685606400) == 1685606400 * NS_PER_S
    assert parse_instant(1685606400.5) == 1685606400 * NS_PER_S + 500_000_000


@pytest.mark.parametrize(
    "bad",
    [
        None,
        True,
        "notadate",
        "",
        "2026-13-01T00:00:00Z",
        float("nan"),
        # normalize quarantines these: reading them here would drop them as "out of window"
        "1685606400",
        "2026-11-21T01:22:44",
        " 2026-11-21T01:22:44Z",
    ],
)
def test_unreadable_times_raise(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the value, any is fine
        parse_instant(bad)


def test_midnight_and_last_half_millisecond_fall_on_the_right_side() -> None:
    end = to_ns(DAY + timedelta(days=1))
    assert parse_instant("2026-11-22T00:00:00Z") == end  # later day: excluded by < end
    assert parse_instant("2026-11-21T23:59:59.9995Z") < end


def test_server_envelope_has_strings_for_page_and_page_size(captures: dict[str, Capture]) -> None:
    cap = captures["13_acctA_day1121_count100_page10.http"]
    page = parse_envelope(cap.body)
    assert (page.total, page.page, page.page_size) == (948, 10, 100)
    assert len(page.data) == 48  # the last page: 948 - 9 * 100
    assert all(parse_instant(r["attempted_at"]) for r in page.data)


def test_sp_envelope_and_empty_window(captures: dict[str, Capture]) -> None:
    sp = parse_envelope(captures["60_sp_day1121_count500_page1.http"].body)
    assert sp.page_size == 500
    assert len(sp.data) == min(500, sp.total)
    empty = parse_envelope(captures["55_acctA_empty_window.http"].body)
    assert (empty.total, empty.data) == (0, [])


def test_docs_envelope_with_batch_and_float_numbers() -> None:
    body = b'{"total": 2.0, "batch": 1, "page": 1.0, "data": [{"attempted_at": 1685606400}]}'
    page = parse_envelope(body)
    assert (page.total, page.page, page.page_size, len(page.data)) == (2, 1, 1, 1)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Gateway</body></html>",
        b'{"total":948,"page_size":"100","page":"10","data":[{"attempted_at":"2026-11-21T01:2',
        b"[]",
        b'{"data": []}',
        b'{"total": "many", "data": []}',
        b'{"total": 1.5, "data": []}',
        b'{"total": 3, "data": {"a": 1}}',
        b'{"total": 3, "data": [1, 2]}',
    ],
)
def test_bad_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(BadBodyError):
        parse_envelope(body)


def test_truncated_capture_is_a_bad_body(captures: dict[str, Capture]) -> None:
    body = captures["13_acctA_day1121_count100_page10.http"].body
    with pytest.raises(BadBodyError):
        parse_envelope(body[: len(body) // 2])


def test_error_shapes(captures: dict[str, Capture]) -> None:
    assert error_message(captures["65_auth_bad_token_401.http"].body) == "Unauthorized"
    assert error_message(captures["64_sp_with_account_key_403.http"].body) == (
        "insufficient privileges"
    )
    assert error_message(captures["48_acctA_page0.http"].body) == (
        'missing or invalid "page" query arg'
    )
    assert "Too many requests" in error_message(captures["82_ratelimit20_req21_429.http"].body)
    assert is_query_parse_error(captures["43_acctA_filter_plus_encoded_2B1508.http"].body)
    assert not is_query_parse_error(b'{"msg":"internal error"}')


def test_split_points_follow_known_records_and_stay_inside() -> None:
    known = [10, 11, 12, 13, 90, 91, 92, 93]
    assert split_points(0, 100, known, 2) == [90]
    cuts = split_points(0, 100, known, 4)
    assert cuts == sorted(cuts)
    assert all(0 < c < 100 for c in cuts)
    assert len(cuts) == 3
    assert split_points(0, 100, [], 4) == [25, 50, 75]
    assert split_points(0, 1, [0], 2) == []
    assert split_points(0, 10, [0, 0, 0], 3) == [5]  # no cut at lo: fall back to the midpoint
