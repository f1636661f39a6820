"""The Alerts stream and call costs at the edge and in the normalizer, against the oracle.

Alerts are a second spec on the one path (streams.ALERTS): the real server's pages are read by
Arrow's reader, and both readings of a page give the rows tests/oracle.py computes on its own
from the records (the key from the time as sent to the nanosecond and the tags; "undefined" as
NULL). Call costs are optional fields: on some records only, absent elsewhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from pipelines.jambonz.streams import (
    ALERTS,
    RECENT_CALLS,
    Stream,
    from_dicts,
    parse_envelope,
    read_page,
)
from pipelines.normalize import Normalized, normalize
from tests import oracle
from tests.conftest import cdr, load_capture

WHERE: dict[str, Any] = {
    "synced_at": datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
    "scope_sid": "x",
    "window_start": datetime(2000, 1, 1, tzinfo=UTC),
    "window_end": datetime(2100, 1, 1, tzinfo=UTC),
}
AT = datetime(2026, 11, 21, 10, 0, 0, 250_000, tzinfo=UTC)


def envelope(records: list[dict[str, Any]]) -> bytes:
    doc = {"total": len(records), "page_size": "500", "page": "1", "data": records}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def both(stream: Stream, body: bytes) -> tuple[Normalized, Normalized, bool]:
    """The page normalized as Arrow's reader read it, and as json.loads read it; whether Arrow's
    reader took it."""
    page = read_page(stream, body)
    slow = normalize(from_dicts(stream, parse_envelope(body).data), stream=stream, **WHERE)
    return normalize(page.records, stream=stream, **WHERE), slow, page.columnar


def rows(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    out = {}
    for row in table.to_pylist():
        row.pop("synced_at")
        if row["extra"] is not None:
            row["extra"] = json.loads(row["extra"])
        out[row.pop(key)] = row
    return out


def assert_alike(fast: Normalized, slow: Normalized) -> None:
    assert fast.calls.equals(slow.calls)
    assert fast.quarantine.equals(slow.quarantine)
    for ours, theirs in zip(
        fast.raw.column("payload").to_pylist(), slow.raw.column("payload").to_pylist(), strict=True
    ):
        assert json.loads(ours) == json.loads(theirs)


@pytest.mark.parametrize(
    "capture",
    [
        "alerts-01_acctA_day1121_count100_page1.http",
        "alerts-03_sp_day1121_count500_page1.http",
        "alerts-09_sp_alert_type_sp_call_limit.http",
    ],
)
def test_real_alert_pages_become_the_oracles_rows(capture: str) -> None:
    body = load_capture(capture).body
    fast, slow, columnar = both(ALERTS, body)
    assert columnar, "Arrow's reader refused a real page"
    assert_alike(fast, slow)
    data = json.loads(body)["data"]
    want = oracle.expected_alerts(data)
    assert want.refused == 0
    assert fast.quarantine.num_rows == 0
    assert rows(fast.calls, "alert_key") == {
        k: {c: v for c, v in r.items() if c != "alert_key"} for k, r in want.rows.items()
    }
    assert len(want.rows) == len(data), "every alert of the page is its own"
    # the payloads come back byte for byte
    assert all(p.encode() in body for p in fast.raw.column("payload").to_pylist())


def test_alerts_sharing_a_millisecond_or_differing_below_it_are_distinct() -> None:
    data = json.loads(load_capture("alerts-01_acctA_day1121_count100_page1.http").body)["data"]
    fast, _, _ = both(ALERTS, envelope(data))
    got = fast.calls.to_pylist()
    same_ms = [r for r in got if r["alerted_at"] == datetime(2026, 11, 21, 20, 29, 3, 819000, UTC)]
    assert len(same_ms) == 3
    assert {(r["alert_type"], r["vendor"]) for r in same_ms} == {
        ("webhook-failure", None),
        ("tts-failure", "microsoft"),
        ("tts-failure", "google"),
    }
    # two deepgram stt-failures 0.666666 ms apart: two rows, the same microsecond-rounded second
    deepgram = [r for r in got if r["vendor"] == "deepgram" and r["alert_type"] == "stt-failure"]
    assert len(deepgram) == 2
    assert len({r["alert_key"] for r in deepgram}) == 2


def test_undefined_account_and_service_provider_are_null() -> None:
    body = load_capture("alerts-03_sp_day1121_count500_page1.http").body
    data = json.loads(body)["data"]
    fast, _, _ = both(ALERTS, body)
    got = fast.calls.to_pylist()
    sp_level = sum(r["account_sid"] == "undefined" for r in data)
    assert sp_level > 0
    assert sum(r["account_sid"] is None for r in got) == sp_level
    assert not any("undefined" in (r["account_sid"], r["service_provider_sid"]) for r in got)
    # the payload keeps what the server sent
    assert sum('"account_sid":"undefined"' in p for p in fast.raw.column("payload").to_pylist())


def test_an_alert_without_a_readable_time_is_quarantined_with_its_reason() -> None:
    data = json.loads(load_capture("alerts-01_acctA_day1121_count100_page1.http").body)["data"]
    bad = [{**data[0], "time": "yesterday"}, {**data[1], "time": None}, data[2]]
    fast, slow, _ = both(ALERTS, envelope(bad))
    assert_alike(fast, slow)
    assert fast.calls.num_rows == 1
    reasons = sorted(fast.quarantine.column("reason").to_pylist())
    assert reasons == [
        "time: 'yesterday' is not an RFC 3339 timestamp or epoch seconds",
        "time: missing",
    ]
    assert oracle.expected_alerts(bad).refused == 2


def test_the_same_alert_twice_is_one_row() -> None:
    data = json.loads(load_capture("alerts-01_acctA_day1121_count100_page1.http").body)["data"]
    fast, _, _ = both(ALERTS, envelope([data[0], data[1], data[0]]))
    assert fast.calls.num_rows == 2


def test_call_costs_on_some_records_fill_their_columns_and_leave_extra() -> None:
    records = [
        cdr("a-1", AT, cost=0.0123, rate=0.012, billed_seconds=60, plan="gold"),
        cdr("a-2", AT),
        cdr("a-3", AT, cost=1, rate=0.5, billed_seconds=120.0),
    ]
    body = envelope(records)
    fast, slow, _ = both(RECENT_CALLS, body)
    assert_alike(fast, slow)
    got = rows(fast.calls, "call_key")
    want = oracle.expected(records).rows
    for key, row in want.items():
        for column in ("cost", "rate", "billed_seconds", "extra"):
            assert got[key][column] == row[column], (key, column)
    assert (got["a-1"]["cost"], got["a-1"]["billed_seconds"]) == (0.0123, 60)
    assert got["a-1"]["extra"] == {"plan": "gold"}
    assert (got["a-2"]["cost"], got["a-2"]["rate"], got["a-2"]["billed_seconds"]) == (None,) * 3
    assert (got["a-3"]["cost"], got["a-3"]["billed_seconds"]) == (1.0, 120)
    # a record without them has no such keys in its payload
    payloads = dict(
        zip(
            fast.calls.column("call_key").to_pylist(),
            fast.raw.column("payload").to_pylist(),
            strict=True,
        )
    )
    assert "cost" not in json.loads(payloads["a-2"])
    assert json.loads(payloads["a-1"])["cost"] == 0.0123


@pytest.mark.parametrize("unrated", ["absent", "null"])
def test_the_common_page_with_costs_is_read_by_arrow(unrated: str) -> None:
    """Rated calls beside unrated ones, whose keys are absent (a server that adds them) or null
    on every record (one whose `SELECT *` returns every key); a whole `0` cost among them."""
    records = [cdr(f"c-{i}", AT, cost=0.25 + i, rate=0.5, billed_seconds=60) for i in range(3)]
    records.append(cdr("c-8", AT, cost=0, rate=0.5, billed_seconds=0))
    nulls = {"cost": None, "rate": None, "billed_seconds": None} if unrated == "null" else {}
    records.append(cdr("c-9", AT, **nulls))
    body = envelope(records)
    fast, slow, columnar = both(RECENT_CALLS, body)
    assert columnar
    assert_alike(fast, slow)
    payloads = fast.raw.column("payload").to_pylist()
    assert [json.loads(p) for p in payloads] == records  # null where sent, absent where not
    got = rows(fast.calls, "call_key")
    assert (got["c-8"]["cost"], got["c-9"]["cost"]) == (0.0, None)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"cost": "0.5"}, "cost: '0.5' is not a number"),
        ({"billed_seconds": 6.5}, "billed_seconds: 6.5 is not a 64-bit integer"),
        ({"rate": True}, "rate: True is not a number"),
    ],
)
def test_a_cost_of_the_wrong_kind_is_quarantined(overrides: dict[str, Any], reason: str) -> None:
    records = [cdr("q-1", AT, **overrides), cdr("q-2", AT, cost=0.1)]
    fast, slow, _ = both(RECENT_CALLS, envelope(records))
    assert_alike(fast, slow)
    assert fast.quarantine.column("reason").to_pylist() == [reason]
    assert oracle.expected(records).refused == 1
