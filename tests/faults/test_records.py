"""Malformed records through the real `daily_sync` job: each bad one quarantined with a reason
naming its field, every good one (odd but valid) loaded verbatim, and the rest of the window too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.jambonz.simulator import Simulator
from tests.conftest import NOW, cdr
from tests.faults.conftest import MakePipeline, assert_window_exact, materialization

DAY = NOW.date() - timedelta(days=2)
NOON = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
LONG = "9" * 100_000


def _record(n: int, **overrides: Any) -> dict[str, Any]:
    at = NOON + timedelta(minutes=n)
    own = {
        "sip_callid": f"sip-{n}@10.0.0.1",
        "trace_id": f"trace-{n}",  # finds the record in calls_quarantine's payloads
        "_at": at,  # where the server stores it, whatever its attempted_at says
    }
    return cdr(f"00000000-0000-4000-8000-{n:012d}", at, **(own | overrides))


# (name, overrides, the field the quarantine reason must name)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("attempted_at absent", {"attempted_at": None}, "attempted_at"),
    ("attempted_at slashes", {"attempted_at": "2026/11/23 12:00:00"}, "attempted_at"),
    ("attempted_at RFC 2822", {"attempted_at": "Mon, 23 Nov 2026 12:00:00 GMT"}, "attempted_at"),
    ("attempted_at without zone", {"attempted_at": "2026-11-23T12:03:00"}, "attempted_at"),
    ("attempted_at date only", {"attempted_at": "2026-11-23"}, "attempted_at"),
    ("attempted_at hour 25", {"attempted_at": "2026-11-23T25:00:00Z"}, "attempted_at"),
    # The next two read as instants of other days to a lenient parser: never dropped for it.
    ("attempted_at epoch as text", {"attempted_at": "1700000000"}, "attempted_at"),
    ("attempted_at zoneless, other day", {"attempted_at": "2026-11-20T12:00:00"}, "attempted_at"),
    ("attempted_at a boolean", {"attempted_at": True}, "attempted_at"),
    ("terminated_at junk", {"terminated_at": "soon"}, "terminated_at"),
    ("answered_at junk", {"answered_at": "2026-13-01T00:00:00Z"}, "answered_at"),
    ("duration as text", {"duration": "60"}, "duration"),
    ("sip_status as text", {"sip_status": "200"}, "sip_status"),
    ("duration fractional", {"duration": 60.5}, "duration"),
    ("sip_status beyond int32", {"sip_status": 2**40}, "sip_status"),
    ("answered as text", {"answered": "true"}, "answered"),
    ("account_sid a number", {"account_sid": 12345}, "account_sid"),
    ("trunk an object", {"trunk": {"name": "twilio"}}, "trunk"),
    (
        "no call_sid, no sip_callid",
        {"call_sid": None, "sip_callid": None},
        "call_sid and sip_callid",
    ),
]

# (name, overrides, column, the value it must hold)
ODD_BUT_GOOD: list[tuple[str, dict[str, Any], str, Any]] = [
    ("unknown keys", {"plan": 0.0123, "carrier_meta": {"a": [1, 2]}}, "extra", None),
    ("very long from", {"from": "+1" + LONG}, "from_number", "+1" + LONG),
    ("very long reason", {"termination_reason": "x" * 50_000}, "termination_reason", "x" * 50_000),
    (
        "full-width digits",
        {"from": "+\uff11\uff15\uff10\uff18\uff15\uff15\uff15\uff10\uff11\uff10\uff10"},
        "from_number",
        "+\uff11\uff15\uff10\uff18\uff15\uff15\uff15\uff10\uff11\uff10\uff10",
    ),
    ("emoji in to", {"to": "1508☎5550199"}, "to_number", "1508☎5550199"),
    ("duration as 60.0", {"duration": 60.0}, "duration", 60),
    (
        "nine fraction digits, offset",
        {"attempted_at": "2026-11-23T07:31:00.123456789-05:00"},
        "attempted_at",
        datetime(2026, 11, 23, 12, 31, 0, 123456, tzinfo=UTC),
    ),
    ("no call_sid, a sip_callid", {"call_sid": None}, "sip_callid", "sip-{n}@10.0.0.1"),
]


@pytest.fixture
def loaded(simulator: Simulator, make_pipeline: MakePipeline) -> dict[str, Any]:
    records = []
    for n, (_, overrides, _) in enumerate(BAD):
        records.append(_record(n, **overrides))
    for n, (_, overrides, _, _) in enumerate(ODD_BUT_GOOD, start=len(BAD)):
        records.append(_record(n, **overrides))
    for record in records:
        if record.get("attempted_at") is None:
            del record["attempted_at"]  # missing, not null
            break
    simulator.add_records(records)
    pipeline = make_pipeline(simulator)
    result = pipeline.run_day(DAY)
    assert result.success, "bad records must not fail the window"
    return {"pipeline": pipeline, "result": result}


def test_bad_records_are_quarantined_with_a_reason_and_the_rest_of_the_window_loads(
    loaded: dict[str, Any],
) -> None:
    pipeline, result = loaded["pipeline"], loaded["result"]
    with pipeline.connect(read_only=True) as con:
        quarantine = con.execute("SELECT payload::VARCHAR, reason FROM calls_quarantine").fetchall()
        held = {r[0] for r in con.execute("SELECT call_key FROM calls").fetchall()}
    reasons = {}
    for payload, reason in quarantine:
        for n, (name, _, field) in enumerate(BAD):
            if f'"trace-{n}"' in payload:
                reasons[name] = (field, reason)
    assert set(reasons) == {name for name, _, _ in BAD}, "every bad record is quarantined"
    assert materialization(result)["quarantined"] == len(BAD)
    for name, (field, reason) in reasons.items():
        assert reason.startswith(field), f"{name}: {reason}"
    for n in range(len(BAD)):
        assert f"00000000-0000-4000-8000-{n:012d}" not in held
    assert assert_window_exact(pipeline, DAY) > 300


def test_odd_but_valid_records_load_verbatim(loaded: dict[str, Any]) -> None:
    pipeline = loaded["pipeline"]
    with pipeline.connect(read_only=True) as con:
        for n, (name, _, column, value) in enumerate(ODD_BUT_GOOD, start=len(BAD)):
            rows = con.execute(
                f'SELECT "{column}", extra::VARCHAR FROM calls '  # noqa: S608
                "WHERE sip_callid = $sip",
                {"sip": f"sip-{n}@10.0.0.1"},
            ).fetchall()
            assert len(rows) == 1, name
            got, extra = rows[0]
            if column == "extra":
                assert extra == '{"carrier_meta":{"a":[1,2]},"plan":0.0123}', name
            elif isinstance(value, str):
                assert got == value.replace("{n}", str(n)), name
            else:
                assert got == value, name


def test_a_resync_quarantines_nothing_twice(loaded: dict[str, Any]) -> None:
    pipeline = loaded["pipeline"]
    again = pipeline.run_day(DAY)
    assert again.success
    assert materialization(again)["quarantined"] == 0  # new quarantine rows
    with pipeline.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM calls_quarantine").fetchone() == (len(BAD),)
