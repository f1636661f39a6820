"""Both readings of a page at the edge (streams.read_page): by Arrow's JSON reader (the sync's
common page) and by json.loads converted to Arrow (an odd page, or the docs' dialect).

Whatever reading a page gets, the one normalizer gives the same rows, the same payloads (as JSON
values) and the same quarantine rows with the same reasons. A page Arrow's reader cannot hold
exactly is left to json.loads.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.jambonz.simulator import generate_day
from pipelines.jambonz.streams import (
    RECENT_CALLS,
    REQUIRED_KEYS,
    BadBodyError,
    Page,
    from_dicts,
    parse_envelope,
    parse_instant,
    read_page,
)
from pipelines.normalize import Normalized, normalize
from tests.conftest import cdr, load_capture
from tests.helpers import record_identity

WS = datetime(2000, 1, 1, tzinfo=UTC)
WE = datetime(2100, 1, 1, tzinfo=UTC)
SYNCED = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
AT = datetime(2026, 11, 21, 10, 0, 0, 250_000, tzinfo=UTC)
WHERE: dict[str, Any] = {
    "synced_at": SYNCED,
    "scope_sid": "x",
    "window_start": WS,
    "window_end": WE,
}


def envelope(records: list[dict[str, Any]], **head: Any) -> bytes:
    """A body shaped like the server's: total a number, page and page_size strings."""
    doc = {"total": len(records), "page_size": "500", "page": "1", **head, "data": records}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def as_dicts(body: bytes) -> Normalized:
    return normalize(from_dicts(RECENT_CALLS, parse_envelope(body).data), **WHERE)


def columnar(body: bytes) -> bool:
    """Whether Arrow's JSON reader took the page."""
    return read_page(RECENT_CALLS, body).columnar


def taken(body: bytes) -> Page:
    page = read_page(RECENT_CALLS, body)
    assert page.columnar, "Arrow's reader refused a page it holds exactly"
    return page


def as_arrow(body: bytes) -> Normalized:
    return normalize(taken(body).records, **WHERE)


def assert_same(body: bytes) -> Normalized:
    """Both readings of the page normalize alike: rows, payloads (as JSON), quarantine."""
    fast, ref = as_arrow(body), as_dicts(body)
    assert fast.calls.equals(ref.calls), _first_difference(fast.calls, ref.calls)
    assert fast.raw.drop_columns(["payload"]).equals(ref.raw.drop_columns(["payload"]))
    for ours, theirs in zip(
        fast.raw.column("payload").to_pylist(), ref.raw.column("payload").to_pylist(), strict=True
    ):
        assert json.loads(ours) == json.loads(theirs)
    assert fast.quarantine.equals(ref.quarantine), (
        fast.quarantine.to_pylist(),
        ref.quarantine.to_pylist(),
    )
    # the window dedupes and filters by these: the keys the stream's rule gives
    page = taken(body)
    data = json.loads(body)["data"]
    assert page.records.keys == [record_identity(r) for r in data]
    assert page.records.instants == [_instant(r.get("attempted_at")) for r in data]
    return fast


def _instant(value: Any) -> int | None:
    try:
        return parse_instant(value) if value is not None else None
    except ValueError:
        return None


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    for name in a.column_names:
        if not a.column(name).equals(b.column(name)):
            return f"column {name}: {a.column(name)[:3]} vs {b.column(name)[:3]}"
    return "schemas differ"


@pytest.mark.parametrize(
    "capture",
    [
        "13_acctA_day1121_count100_page10.http",
        "35_acctA_answered_false.http",
        "52_acctA_count0.http",
        "60_sp_day1121_count500_page1.http",
        "80_ratelimit20_req01_normal_headers.http",
    ],
)
def test_real_pages_read_as_arrow_normalize_as_dicts_do(capture: str) -> None:
    body = load_capture(capture).body
    fast = assert_same(body)
    assert fast.quarantine.num_rows == 0
    # the captures' payloads come back byte for byte (the server's key order and number forms),
    # from either reading
    for payloads in (fast.raw.column("payload"), as_dicts(body).raw.column("payload")):
        assert all(p.encode() in body for p in payloads.to_pylist())
    page = taken(body)
    doc = json.loads(body)
    assert (page.total, page.page, page.page_size) == (
        doc["total"],
        int(doc["page"]),
        int(doc["page_size"]),
    )


def test_empty_pages_are_taken() -> None:
    for name in ("14_acctA_day1121_count100_page11.http", "55_acctA_empty_window.http"):
        page = taken(load_capture(name).body)
        assert len(page.records) == 0
        assert page.records.keys == []
        assert page.records.instants == []


def test_a_simulated_day_with_the_servers_quirks_normalizes_alike() -> None:
    """Whole-number floats (`752.0`), calls without call_sid, optional keys (`cost`,
    `billed_seconds`): the simulator's day has them all."""
    block = generate_day(3, 0, 20_000, 3_000)
    records = [block.record(i) for i in range(len(block))]
    assert any(r["call_sid"] is None for r in records)
    assert any(type(r["duration"]) is float for r in records)
    for start in range(0, len(records), 500):
        body = envelope(records[start : start + 500])
        if columnar(body):
            assert_same(body)
    taken_pages = sum(columnar(envelope(records[s : s + 500])) for s in range(0, len(records), 500))
    assert taken_pages >= len(records) // 500 // 2  # the common page is taken


def test_unknown_keys_go_to_extra_and_back_into_the_payload() -> None:
    records = [
        cdr("a-1", AT, cost=0.25, billed_seconds=60, plan="gold", trial=False),
        cdr("a-2", AT),
        cdr("a-3", AT, plan="silver"),
    ]
    fast = assert_same(envelope(records))
    extra = dict(
        zip(
            fast.calls.column("call_key").to_pylist(),
            fast.calls.column("extra").to_pylist(),
            strict=False,
        )
    )
    assert extra == {  # cost and billed_seconds have columns (tests/unit/test_alert_records.py)
        "a-1": '{"plan":"gold","trial":false}',
        "a-2": None,
        "a-3": '{"plan":"silver"}',
    }


def test_a_call_without_call_sid_gets_the_surrogate_key() -> None:
    fast = assert_same(envelope([cdr(None, AT, sip_callid="only@10.0.0.1"), cdr("b-1", AT)]))
    keys = fast.calls.column("call_key").to_pylist()
    assert any(k.startswith("nosid:") for k in keys)
    assert "b-1" in keys


def test_the_unanswered_sentinel_becomes_null() -> None:
    fast = assert_same(envelope([cdr("c-1", AT, failed=True)]))
    assert fast.calls.column("answered_at").null_count == 1


# Values Arrow holds exactly but the normalizer refuses or reads specially: taken as Arrow, and
# judged there as on dicts (field, value, reason).
JUDGED: dict[str, tuple[dict[str, Any], str | None]] = {
    "a fraction in an integer field": (
        cdr("r-1", AT, duration=7.5),
        "duration: 7.5 is not a 32-bit integer",
    ),
    "an integer beyond int32": (
        cdr("r-1", AT, duration=2**31),
        "duration: 2147483648 is not a 32-bit integer",
    ),
    "attempted_at null": (cdr("r-1", AT, attempted_at=None), "attempted_at: missing"),
    "attempted_at unreadable": (
        cdr("r-1", AT, attempted_at="2026-11-21"),
        "attempted_at: '2026-11-21' is not an RFC 3339 timestamp or epoch seconds",
    ),
    "an unreadable answered_at": (
        cdr("r-1", AT, answered_at="yesterday"),
        "answered_at: 'yesterday' is not an RFC 3339 timestamp or epoch seconds",
    ),
    "attempted_at with an offset": (
        cdr("r-1", "2026-11-21T10:00:00.250+01:00", failed=True),
        None,
    ),
    "a key named call_key": (cdr("r-1", AT, call_key="k"), None),
}


@pytest.mark.parametrize("case", sorted(JUDGED))
def test_values_the_normalizer_judges_are_judged_alike_on_both_readings(case: str) -> None:
    record, reason = JUDGED[case]
    fast = assert_same(envelope([cdr("ok-1", AT), record]))
    assert fast.calls.num_rows == (1 if reason else 2)
    assert fast.quarantine.column("reason").to_pylist() == ([reason] if reason else [])


REFUSED: dict[str, list[dict[str, Any]]] = {
    "a number in a text field": [cdr("r-1", AT, **{"from": 15085550100})],
    "a string in a number field": [cdr("r-1", AT, sip_status="busy")],
    "a boolean in a number field": [cdr("r-1", AT, duration=True)],
    "a number in the boolean field": [cdr("r-1", AT, answered=1)],
    "attempted_at in epoch seconds": [cdr("r-1", AT, attempted_at=1_763_719_200)],
    "an integer beyond 2^53": [cdr("r-1", AT, duration=2**60 + 1)],
    "no call_sid and no sip_callid": [cdr(None, AT, sip_callid=None)],
    "the docs' sip_call_id": [cdr("r-1", AT, sip_call_id="x@h")],
    "an unknown key that is null": [cdr("r-1", AT, cost=None)],
    "an unknown whole float": [cdr("r-1", AT, plan=1.0), cdr("r-2", AT, plan=0.5)],
    "an unknown object": [cdr("r-1", AT, tags={"a": 1})],
    "an unknown list": [cdr("r-1", AT, tags=[1, 2])],
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_pages_arrow_cannot_hold_exactly_are_read_as_dicts(case: str) -> None:
    body = envelope([cdr("ok-1", AT), *REFUSED[case]])
    page = read_page(RECENT_CALLS, body)
    assert not page.columnar
    # json.loads read it, converted to Arrow without losing a key or a value
    records = [page.records.record(i, REQUIRED_KEYS) for i in range(len(page.records))]
    assert records == json.loads(body)["data"]
    assert normalize(page.records, **WHERE).calls.num_rows >= 1


def test_a_record_missing_a_key_is_refused_not_rebuilt_with_a_null() -> None:
    record = cdr("m-1", AT)
    del record["recording_url"]
    assert not columnar(envelope([cdr("ok-1", AT), record]))


def test_a_text_holding_a_key_like_sequence_is_refused() -> None:
    # `":` inside a value breaks the key count: refused (safe), never misread
    assert not columnar(envelope([cdr("q-1", AT, termination_reason='said "bye": hung up')]))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"total":1,"data":[',
        b"[]",
        b'{"total":1,"page":"1","page_size":"500","data":null}',
        b'{"page":"1","data":[]}',
        b'{"total":-1,"data":[]}',
        b'{"total":1,"page":1,"page_size":500,"data":[]}',
        b'{"total":1,"batch":"5","page_size":"5","data":[]}',
        b'{"total":1,"msg":"x","data":[]}',
        b'{"total":1,"data":[1,2]}',
        b'{"total":0,"data":[]}\n{"total":0,"data":[]}',
    ],
)
def test_odd_envelopes_are_refused(body: bytes) -> None:
    with contextlib.suppress(BadBodyError):  # json.loads names what is wrong
        assert not columnar(body)


_VALUES: dict[str, list[Any]] = {
    "call_sid": ["s", "", None, 5],
    "sip_callid": ["x@h", None, ""],
    "duration": [0, 60, 60.0, 7.5, -1, 2**31, None, "60", False],
    "sip_status": [200, 486, 486.0, None, "486"],
    "answered": [True, False, None, 0],
    "answered_at": ["1970-01-01T00:00:00.000Z", "2026-11-21T10:00:05.1Z", None, "x", 5],
    "attempted_at": ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789Z", None, 1.5],
    "direction": ["inbound", None, 1],
    "trunk": ["twilio", None, "", "Zoë \u2603", 'a"b\\c'],
    "cost": [0.25, 3, "x", None, True],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.sampled_from(sorted(_VALUES)), st.integers(0, 8), max_size=4),
        min_size=1,
        max_size=6,
    )
)
def test_whatever_read_page_takes_normalizes_as_its_dicts_do(
    edits: list[dict[str, int]],
) -> None:
    records = []
    for i, edit in enumerate(edits):
        record = cdr(f"p-{i}", AT)
        for key, pick in edit.items():
            values = _VALUES[key]
            record[key] = values[pick % len(values)]
        records.append(record)
    body = envelope(records)
    if not columnar(body):
        return  # refused: read as dicts (tests/unit/test_records.py judges those)
    assert_same(body)
