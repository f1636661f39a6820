"""The simulator's CDR and alert generators and time helpers, without a server."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from pipelines.jambonz.simulator import (
    ALERT_KEYS,
    COST_KEYS,
    DAY_NS,
    DOCS_KEYS,
    NS,
    RATED_TRUNK,
    SERVER_KEYS,
    SP_OWNER,
    TRUNKS,
    UNANSWERED_SENTINEL,
    UNDEFINED,
    call_cost,
    format_influx,
    format_ms,
    generate_alerts,
    generate_day,
    parse_time_param,
    to_docs,
)

DAY = 20_413  # 2025-11-21 as days since the epoch
MIDNIGHT = DAY * DAY_NS


@pytest.mark.parametrize(
    ("frac_ns", "text"),
    [
        (556_000_000, "2025-11-21T00:00:00.556Z"),
        (80_000_000, "2025-11-21T00:00:00.08Z"),
        (500_000_000, "2025-11-21T00:00:00.5Z"),
        (0, "2025-11-21T00:00:00Z"),
        (123_456_789, "2025-11-21T00:00:00.123456789Z"),
    ],
)
def test_attempted_at_trims_fraction_zeros_like_influx(frac_ns: int, text: str) -> None:
    assert format_influx(MIDNIGHT + frac_ns) == text
    assert parse_time_param(text) == MIDNIGHT + frac_ns


def test_answered_and_terminated_keep_three_digits() -> None:
    assert format_ms(MIDNIGHT + 80_000_000) == "2025-11-21T00:00:00.080Z"
    assert format_ms(0) == UNANSWERED_SENTINEL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-21", MIDNIGHT),
        ("2025-11-21 01:00:00", MIDNIGHT + 3600 * NS),
        ("2025-11-21 01:00:00.5", MIDNIGHT + 3600 * NS + NS // 2),
        ("2025-11-21T03:00:00+02:00", MIDNIGHT + 3600 * NS),
        ("2025-11-20T23:00:00-01:00", MIDNIGHT),
        ("2025-11-21T03:00:00 02:00", None),  # a raw '+' arrived as a space
        ("1763683200", None),
        ("notadate", None),
        ("2025-02-30", None),
    ],
)
def test_parse_time_param(text: str, expected: int | None) -> None:
    assert parse_time_param(text) == expected


def test_twenty_thousand_calls_a_day_generate_fast_and_deterministically() -> None:
    t0 = time.perf_counter()
    block = generate_day(1, 0, DAY, 20_000)
    assert time.perf_counter() - t0 < 1.5
    assert 19_000 < len(block) < 21_000
    again = generate_day(1, 0, DAY, 20_000)
    assert np.array_equal(block.attempted_ns, again.attempted_ns)
    assert block.record(123) == again.record(123)
    assert block.record(123) != generate_day(2, 0, DAY, 20_000).record(123)


def test_generated_calls_have_the_promised_character() -> None:
    b = generate_day(7, 0, DAY, 20_000)
    att = b.attempted_ns
    assert np.all(np.diff(att) >= 0)
    assert att[0] >= MIDNIGHT
    assert att[-1] < MIDNIGHT + DAY_NS
    # a business-hours curve: 14:00 is busier than 03:00
    hours = (att - MIDNIGHT) // (3600 * NS)
    assert (hours == 14).sum() > 5 * (hours == 3).sum()
    telnyx = b.trunk == TRUNKS.index("telnyx")
    assert 0.3 < b.answered[telnyx].mean() < 0.5
    assert 0.65 < b.answered[~telnyx].mean() < 0.85
    assert 0.01 < b.null_call_sid.mean() < 0.06
    assert not np.any(b.null_call_sid & (b.outbound | b.answered))
    ended = b.terminated_ms * 1_000_000
    assert np.any(ended >= MIDNIGHT + DAY_NS)  # some calls run past midnight
    assert np.all(b.visible_ns >= ended)
    assert np.all(b.visible_ns - ended <= 20 * NS)
    answered = b.answered
    assert np.array_equal(b.duration[answered], (b.terminated_ms - b.answered_ms)[answered] // 1000)
    assert np.all(b.duration[~answered] == 0)
    assert np.all(b.sip_status[answered] == 200)
    assert np.all(b.sip_status[~answered] != 200)
    records = [b.record(i) for i in range(len(b))]
    fractions = {len(r["attempted_at"]) for r in records}
    assert {20, 24}.issubset(fractions)
    assert max(fractions) > 24
    extra = [r for r in records if set(r) - {*SERVER_KEYS, *COST_KEYS}]
    assert 0 < len(extra) < len(records) / 200
    assert all(tuple(r)[:21] == SERVER_KEYS for r in records)
    floats = [r for r in records if isinstance(r["duration"], float)]
    assert 0 < len(floats) < len(records) / 100
    assert any(r["recording_url"] for r in records)
    assert any(r["sip_parent_callid"] for r in records if r["direction"] == "outbound")
    assert not any(r["sip_parent_callid"] for r in records if r["direction"] == "inbound")


def test_docs_shape_of_a_record() -> None:
    b = generate_day(7, 0, DAY, 500)
    i = int(np.argmax(~b.answered))
    server = b.record(i)
    docs = to_docs(server)
    assert tuple(docs)[:16] == DOCS_KEYS
    assert docs["answered_at"] is None
    assert docs["sip_call_id"] == server["sip_callid"]
    assert docs["attempted_at"] == int(b.attempted_ns[i]) // NS


def test_alerts_a_day_follow_the_calls_and_a_fifth_are_refused_calls() -> None:
    days = range(DAY, DAY + 30)
    for calls_per_day, low, high in ((400, 10, 18), (1000, 18, 30), (20_000, 280, 340)):
        mean = sum(len(generate_alerts(1, 0, d, calls_per_day)) for d in days) / len(days)
        assert low < mean < high, (calls_per_day, mean)
    assert all(generate_alerts(1, o, d, 0) == [] for o in (0, 1, SP_OWNER) for d in days)
    types = Counter(
        a.record["alert_type"]
        for o in (0, 1, SP_OWNER)
        for d in days
        for a in generate_alerts(1, o, d, 1000)
    )
    refused = types["account-call-limit"] + types["service-provider-call-limit"]
    assert 0.1 < refused / sum(types.values()) < 0.3
    assert len(types) >= 15


def test_generated_alerts_are_points_of_the_writer() -> None:
    day = [a for o in (0, 1, SP_OWNER) for a in generate_alerts(7, o, DAY, 1000)]
    assert len({(a.at_ns, a.series) for a in day}) == len(day)  # no point written twice
    for a in day:
        assert tuple(a.record) == ALERT_KEYS
        assert a.record["time"] == format_influx(a.at_ns)
        assert MIDNIGHT <= a.at_ns < MIDNIGHT + DAY_NS
        assert all(type(v) is str for k, v in a.record.items() if k not in ("detail", "vendor"))
        assert "none)" not in a.record["message"] or a.record["vendor"] in ("microsoft", "aws")
    own = [a.record for a in generate_alerts(7, SP_OWNER, DAY, 1000)]
    assert {r["account_sid"] for r in own} == {UNDEFINED}
    assert generate_alerts(7, 0, DAY, 1000) == generate_alerts(7, 0, DAY, 1000)
    assert generate_alerts(7, 0, DAY, 1000) != generate_alerts(8, 0, DAY, 1000)


@pytest.mark.parametrize(
    ("direction", "answered", "duration", "expected"),
    [
        ("outbound", True, 61, {"cost": 0.0143, "rate": 0.013, "billed_seconds": 66}),
        ("outbound", True, 60, {"cost": 0.013, "rate": 0.013, "billed_seconds": 60}),
        ("inbound", True, 61, {"cost": 0.017, "rate": 0.0085, "billed_seconds": 120}),
        ("inbound", True, 1, {"cost": 0.0085, "rate": 0.0085, "billed_seconds": 60}),
        ("outbound", False, 0, {"cost": 0, "rate": 0.013, "billed_seconds": 0}),
    ],
)
def test_call_cost(
    direction: str, answered: bool, duration: int, expected: dict[str, float]
) -> None:
    cost = call_cost(direction, answered, duration)
    assert cost == expected
    assert tuple(cost) == COST_KEYS
    assert type(cost["billed_seconds"]) is int
    assert type(cost["cost"]) is (float if answered else int)  # 0, as JavaScript sends it


def test_a_third_of_calls_carry_costs_and_nothing_else_changes() -> None:
    rated = generate_day(7, 0, DAY, 5_000)
    plain = generate_day(7, 0, DAY, 5_000, costs=False)
    with_costs = 0
    for i in range(len(rated)):
        r, p = rated.record(i), plain.record(i)
        added = [k for k in r if k not in p]
        assert {k: r[k] for k in p} == p
        assert list(r)[: len(p)] == list(p)  # the keys of a server before 0.5.0 come first
        if added:
            assert added == list(COST_KEYS)
            assert r["trunk"] == RATED_TRUNK
            assert {k: r[k] for k in added} == call_cost(
                r["direction"], r["answered"], r["duration"]
            )
            with_costs += 1
        else:
            assert r["trunk"] != RATED_TRUNK or len(p) > len(SERVER_KEYS)  # a rare key already
    assert 0.3 < with_costs / len(rated) < 0.4
