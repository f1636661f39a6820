"""normalize_dicts() and record_identity(): both dialects, quarantine, surrogate keys, dedupe."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from pipelines.jambonz.streams import SURROGATE_PREFIX
from pipelines.normalize import Normalized
from tests.conftest import load_capture
from tests.helpers import normalize_dicts, record_identity
from warehouse.tables import CALLS_SCHEMA, QUARANTINE_SCHEMA, RAW_SCHEMA

WS = datetime(2026, 11, 21, tzinfo=UTC)
WE = datetime(2026, 11, 22, tzinfo=UTC)
SYNCED = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
ACCOUNT = "173c3dbf-acbb-4e31-9668-a4f3445cb971"


def real_records() -> list[dict[str, Any]]:
    return list(load_capture("52_acctA_count0.http").json()["data"])


def norm(records: list[dict[str, Any]]) -> Normalized:
    return normalize_dicts(
        records, synced_at=SYNCED, scope_sid=ACCOUNT, window_start=WS, window_end=WE
    )


def one_row(record: dict[str, Any]) -> dict[str, Any]:
    n = norm([record])
    assert n.quarantine.num_rows == 0, n.quarantine.column("reason").to_pylist()
    rows = n.calls.to_pylist()
    assert len(rows) == 1
    return rows[0]


def base() -> dict[str, Any]:
    return dict(real_records()[0])  # answered outbound call with call_sid


def test_real_capture_normalizes_completely() -> None:
    records = real_records()
    n = norm(records)
    assert n.calls.schema == CALLS_SCHEMA
    assert n.raw.schema == RAW_SCHEMA
    assert n.quarantine.schema == QUARANTINE_SCHEMA
    assert n.calls.num_rows == 948
    assert n.quarantine.num_rows == 0
    keys = n.calls.column("call_key").to_pylist()
    assert len(set(keys)) == 948
    nosid = [k for k in keys if k.startswith(SURROGATE_PREFIX)]
    assert len(nosid) == sum(1 for r in records if r["call_sid"] is None) == 21
    # every unanswered call's 1970 sentinel became NULL; every answered call has an answer time
    for row in n.calls.to_pylist():
        assert (row["answered_at"] is not None) == row["answered"]
        assert row["extra"] is None
        assert row["synced_at"] == SYNCED
    # raw payloads are the records as received
    by_key = {record_identity(r): r for r in records}
    for key, payload in zip(
        n.raw.column("call_key").to_pylist(), n.raw.column("payload").to_pylist(), strict=True
    ):
        assert json.loads(payload) == by_key[key]


def test_record_identity_matches_normalize_on_real_records() -> None:
    records = real_records()
    n = norm(records)
    assert sorted(n.calls.column("call_key").to_pylist()) == sorted(map(record_identity, records))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T10:00:29.082Z", datetime(2026, 11, 21, 10, 0, 29, 82000, tzinfo=UTC)),
        ("2026-11-21T10:00:29.08Z", datetime(2026, 11, 21, 10, 0, 29, 80000, tzinfo=UTC)),
        ("2026-11-21T10:00:29Z", datetime(2026, 11, 21, 10, 0, 29, tzinfo=UTC)),
        ("2026-11-21T10:00:29.123456789Z", datetime(2026, 11, 21, 10, 0, 29, 123456, tzinfo=UTC)),
        ("2026-11-21T12:00:29.5+02:00", datetime(2026, 11, 21, 10, 0, 29, 500000, tzinfo=UTC)),
        ("2026-11-21T05:00:29-05:00", datetime(2026, 11, 21, 10, 0, 29, tzinfo=UTC)),
        (1763719229, datetime(2025, 11, 21, 10, 0, 29, tzinfo=UTC)),
        (1763719229.25, datetime(2025, 11, 21, 10, 0, 29, 250000, tzinfo=UTC)),
    ],
)
def test_attempted_at_dialects(text: Any, expected: datetime) -> None:
    assert one_row(dict(base(), attempted_at=text))["attempted_at"] == expected


def test_mixed_dialects_in_one_batch() -> None:
    records = real_records()[:10]
    records[3] = dict(records[3], attempted_at=1763719229, terminated_at=1763719300.5)
    n = norm(records)
    assert n.calls.num_rows == 10
    assert n.quarantine.num_rows == 0


def test_floats_as_ints() -> None:
    row = one_row(dict(base(), duration=752.0, sip_status=200.0))
    assert row["duration"] == 752
    assert row["sip_status"] == 200


@pytest.mark.parametrize("sentinel", ["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00Z", 0, 0.0])
def test_answered_at_sentinel_is_null(sentinel: Any) -> None:
    assert one_row(dict(base(), answered_at=sentinel))["answered_at"] is None


def test_unanswered_calls_have_no_answer_time() -> None:
    row = one_row(dict(base(), answered=False, answered_at="2026-11-21T23:59:23.166Z"))
    assert row["answered_at"] is None


def test_docs_dialect_record() -> None:
    docs = {
        "account_sid": ACCOUNT,
        "call_sid": None,
        "from": "15083084809",
        "to": "15083727654",
        "answered": True,
        "sip_status": 200,
        "duration": 45,
        "attempted_at": 1763719229.082,
        "answered_at": 1763719231,
        "terminated_at": 1763719276,
        "direction": "inbound",
        "sip_call_id": "abc@10.0.0.1",
        "termination_reason": "normal_clearing",
        "host": "10.0.0.11",
        "remote_host": "3.4.5.6",
        "trunk": "twilio",
        "cost": 0.01,
    }
    row = one_row(docs)
    assert row["sip_callid"] == "abc@10.0.0.1"
    assert row["from_number"] == "15083084809"
    assert row["to_number"] == "15083727654"
    assert row["call_key"].startswith(SURROGATE_PREFIX)
    assert row["call_key"] == record_identity(docs)
    assert row["answered_at"] == datetime(2025, 11, 21, 10, 0, 31, tzinfo=UTC)
    assert row["extra"] is None  # sip_call_id is a column, not extra; so is cost
    assert row["cost"] == 0.01


def test_extra_holds_unknown_keys_sorted_and_compact() -> None:
    row = one_row(dict(base(), tier="0.01", seats=60, promo=None))
    assert row["extra"] == '{"promo":null,"seats":60,"tier":"0.01"}'


def test_surrogate_key_is_stable_across_dialects_and_syncs() -> None:
    server = dict(
        base(),
        call_sid=None,
        direction="inbound",
        sip_callid="x@1",
        attempted_at="2026-11-21T10:00:29.987654321Z",
    )
    offset = dict(server, attempted_at="2026-11-21T12:00:29.1+02:00")
    docs = {k: v for k, v in server.items() if k != "sip_callid"}
    docs.update(sip_call_id="x@1", attempted_at=1763719229.9)  # 2025-11-21T10:00:29.9Z
    docs_same_day = dict(docs, attempted_at=1763719229 + 365 * 86400)  # 2026-11-21T10:00:29Z
    key = one_row(server)["call_key"]
    assert key.startswith(SURROGATE_PREFIX)
    assert key == record_identity(server) == record_identity(dict(server))
    assert one_row(offset)["call_key"] == key == record_identity(offset)
    assert one_row(docs_same_day)["call_key"] == key == record_identity(docs_same_day)
    assert one_row(docs)["call_key"] != key  # a year earlier is another call
    # another second, direction or SIP id is another call
    assert record_identity(dict(server, attempted_at="2026-11-21T10:00:30Z")) != key
    assert record_identity(dict(server, direction="outbound")) != key
    assert record_identity(dict(server, sip_callid="y@1")) != key


def test_record_identity_without_any_id_is_invalid_and_distinct() -> None:
    a = dict(base(), call_sid=None, sip_callid=None)
    b = dict(a, duration=1)
    assert record_identity(a).startswith("invalid:")
    assert record_identity(a) == record_identity(dict(reversed(list(a.items()))))
    assert record_identity(a) != record_identity(b)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"attempted_at": None}, "attempted_at: missing"),
        ("drop_attempted_at", "attempted_at: missing"),
        ({"attempted_at": "notadate"}, "attempted_at: 'notadate' is not"),
        ({"terminated_at": "2026-13-45T00:00:00Z"}, "terminated_at: '2026-13-45"),
        ({"call_sid": None, "sip_callid": None}, "call_sid and sip_callid/sip_call_id"),
        ({"duration": "abc"}, "duration: 'abc' is not a 32-bit integer"),
        ({"duration": 752.5}, "duration: 752.5 is not a 32-bit integer"),
        ({"answered": "yes"}, "answered: 'yes' is not a boolean"),
        ({"sip_status": 99999999999}, "sip_status: 99999999999 is not a 32-bit integer"),
        ({"sip_status": True}, "sip_status: True is not a 32-bit integer"),
        ({"from": 15083084809}, "from: 15083084809 is not a string"),
    ],
)
def test_quarantine_reasons_and_rest_of_window_loads(change: Any, reason: str) -> None:
    records = real_records()
    bad = dict(records[100])
    if change == "drop_attempted_at":
        del bad["attempted_at"]
    else:
        bad.update(change)
    records[100] = bad
    n = norm(records)
    assert n.calls.num_rows == 947
    assert n.quarantine.num_rows == 1
    q = n.quarantine.to_pylist()[0]
    assert q["reason"].startswith(reason), q["reason"]
    assert json.loads(q["payload"]) == bad
    assert q["scope_sid"] == ACCOUNT
    assert q["account_sid"] == ACCOUNT
    assert (q["window_start"], q["window_end"], q["quarantined_at"]) == (WS, WE, SYNCED)


def test_several_bad_records_in_several_columns() -> None:
    records = real_records()
    records[1] = dict(records[1], duration="abc")
    records[2] = dict(records[2], answered="yes", duration="x")
    records[3] = dict(records[3], attempted_at=None)
    n = norm(records)
    assert n.calls.num_rows == 945
    assert n.quarantine.num_rows == 3
    same = norm(records)
    assert same.quarantine.column("quarantine_key").equals(n.quarantine.column("quarantine_key"))


def test_quarantine_key_depends_on_window() -> None:
    bad = dict(base(), duration="abc")
    a = norm([bad]).quarantine
    b = normalize_dicts(
        [bad], synced_at=SYNCED, scope_sid=ACCOUNT, window_start=WS, window_end=SYNCED
    ).quarantine
    assert a.column("quarantine_key")[0] != b.column("quarantine_key")[0]
    assert norm([bad, dict(bad)]).quarantine.num_rows == 1  # the same record twice: one row


def test_dedupe_latest_terminated_at_wins_regardless_of_order() -> None:
    records = real_records()
    first = records[0]
    later = dict(first, terminated_at="2026-11-22T00:09:00.000Z", duration=500)
    tie_a = dict(records[1], trunk="a")
    tie_b = dict(records[1], trunk="b")
    batch = [*records, later, tie_a, tie_b]
    results = []
    for seed in range(5):
        shuffled = list(batch)
        random.Random(seed).shuffle(shuffled)
        results.append(norm(shuffled).calls.drop_columns(["synced_at"]))
    assert all(t.equals(results[0]) for t in results)
    rows = {r["call_key"]: r for r in results[0].to_pylist()}
    assert len(rows) == 948
    assert rows[first["call_sid"]]["duration"] == 500
    # same terminated_at: the greatest canonical JSON wins ("user" > "b" > "a")
    assert rows[records[1]["call_sid"]]["trunk"] == records[1]["trunk"] == "user"


def test_empty_batch() -> None:
    n = norm([])
    assert n.calls.num_rows == n.raw.num_rows == n.quarantine.num_rows == 0
    assert n.calls.schema == CALLS_SCHEMA


def test_timestamps_are_microseconds_utc() -> None:
    n = norm(real_records()[:3])
    for name in ("attempted_at", "answered_at", "terminated_at", "synced_at"):
        assert n.calls.schema.field(name).type == pa.timestamp("us", tz="UTC")
