"""The simulator over real HTTP: it must answer as the captured jambonz server does.

Every test talks to a simulator on a loopback port through httpx (no mocks), and where a capture
exists compares against it byte for byte in body and header shape.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.jambonz.simulator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ADMIN_KEY,
    DOCS_KEYS,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    SERVER_KEYS,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    Faults,
    Simulator,
    parse_time_param,
)
from tests.conftest import NOW, Capture

ACCT_PATH = f"/v1/Accounts/{ACCOUNT_SID}/RecentCalls"
SP_PATH = f"/v1/ServiceProviders/{SERVICE_PROVIDER_SID}/RecentCalls"
DAY_START = "2026-11-21T00:00:00.000Z"
DAY_END = "2026-11-21T23:59:59.999Z"
DAY = {"start": DAY_START, "end": DAY_END}
D0 = datetime(2026, 11, 21, tzinfo=UTC)
D1 = D0 + timedelta(days=1)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def get(
    client: httpx.Client, path: str = ACCT_PATH, key: str = ACCOUNT_KEY, **params: Any
) -> httpx.Response:
    return client.get(path, params=params, headers=auth(key))


def attempted_ns(value: str) -> int:
    ns = parse_time_param(value)
    assert ns is not None, value
    return ns


@pytest.fixture
def client(simulator: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.base_url, timeout=10) as c:
        yield c


# --- shapes against the captures --------------------------------------------------------------


def test_page_envelope_and_records_have_the_captured_shape(
    client: httpx.Client, captures: dict[str, Capture]
) -> None:
    cap = captures["13_acctA_day1121_count100_page10.http"]
    r = get(client, page=2, count=100, **DAY)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == list(cap.json()) == ["total", "page_size", "page", "data"]
    assert body["page_size"] == "100"
    assert body["page"] == "2"
    assert isinstance(body["total"], int)
    assert body["total"] > 100
    # Compact separators, as express's JSON.stringify: re-serialising changes nothing.
    assert r.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert r.content.startswith(b'{"total":')
    cap_keys = list(cap.json()["data"][0])
    assert tuple(cap_keys) == SERVER_KEYS
    for rec in body["data"]:
        assert list(rec)[:21] == cap_keys
    assert r.headers["content-type"] == cap.headers["content-type"]
    assert r.headers["connection"] == "keep-alive"
    for name in ("ratelimit-policy", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert name in r.headers
    assert r.headers["ratelimit-policy"] == cap.headers["ratelimit-policy"]  # 600;w=300
    assert int(r.headers["content-length"]) == len(r.content)


def test_record_values_look_like_the_captures(client: httpx.Client) -> None:
    data = get(client, page=1, count=0, **DAY).json()["data"]
    assert data
    fraction = re.compile(r"^2026-11-21T\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
    three = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    for rec in data:
        assert fraction.match(rec["attempted_at"]), rec["attempted_at"]
        assert not rec["attempted_at"].endswith("0Z")  # trailing zeros trimmed
        assert three.match(rec["terminated_at"])
        if rec["answered"]:
            assert three.match(rec["answered_at"])
            assert rec["sip_status"] == 200
            assert rec["termination_reason"] in ("caller hungup", "called party hungup")
        else:
            assert rec["answered_at"] == "1970-01-01T00:00:00.000Z"
            assert rec["duration"] == 0
            assert rec["sip_status"] != 200
            assert rec["termination_reason"] in ("failed", "caller abandoned")
        assert rec["trace_id"] is None or re.fullmatch(r"[0-9a-f]{32}", rec["trace_id"])
        if rec["direction"] == "outbound":
            assert not rec["from"].startswith("+")
            assert not rec["to"].startswith("+")
        if rec["recording_url"] is not None:
            assert rec["recording_url"] == (
                f"/Accounts/{ACCOUNT_SID}/RecentCalls/{rec['call_sid']}/record/2026/11/21/mp3"
            )
    assert any(r["call_sid"] is None and r["direction"] == "inbound" for r in data)
    assert any(r["sip_parent_callid"] for r in data)


@pytest.mark.parametrize(
    ("capture", "path", "key", "params"),
    [
        ("48_acctA_page0.http", ACCT_PATH, ACCOUNT_KEY, {"page": 0, "count": 25}),
        ("51_acctA_count501_single.http", ACCT_PATH, ACCOUNT_KEY, {"page": 1, "count": 501}),
        ("64_sp_with_account_key_403.http", SP_PATH, ACCOUNT_KEY, {"page": 1, "count": 3}),
        ("65_auth_bad_token_401.http", ACCT_PATH, "bogus_token", {"page": 1, "count": 25}),
        (
            "68_malformed_account_sid.http",
            "/v1/Accounts/not-a-sid/RecentCalls",
            ACCOUNT_KEY,
            {"page": 1, "count": 25},
        ),
        (
            "69_malformed_account_sid_admin.http",
            "/v1/Accounts/not-a-sid/RecentCalls",
            ADMIN_KEY,
            {"page": 1, "count": 25},
        ),
        (
            "43_acctA_filter_plus_encoded_2B1508.http",
            ACCT_PATH,
            ACCOUNT_KEY,
            {"page": 1, "count": 25, "filter": "+1508", **DAY},
        ),
        (
            "55_acctA_empty_window.http",
            ACCT_PATH,
            ACCOUNT_KEY,
            {
                "page": 1,
                "count": 25,
                "start": "2026-10-01T00:00:00Z",
                "end": "2026-10-02T00:00:00Z",
            },
        ),
    ],
)
def test_error_and_empty_answers_match_the_captures(
    client: httpx.Client,
    captures: dict[str, Capture],
    capture: str,
    path: str,
    key: str,
    params: dict[str, Any],
) -> None:
    cap = captures[capture]
    r = get(client, path, key, **params)
    assert r.status_code == cap.status
    assert r.content == cap.body
    assert r.headers.get("content-type") == cap.headers.get("content-type")
    assert r.headers.get("www-authenticate") == cap.headers.get("www-authenticate")
    assert "ratelimit-remaining" in r.headers


def test_missing_token_is_401_and_a_repeated_count_slips_past_the_check(
    client: httpx.Client,
) -> None:
    r = client.get(ACCT_PATH, params={"page": 1, "count": 25})
    assert r.status_code == 401
    assert r.text == "Unauthorized"
    r = client.get(
        ACCT_PATH,
        params=[("page", "1"), ("count", "600"), ("count", "600"), *DAY.items()],
        headers=auth(ACCOUNT_KEY),
    )
    assert r.status_code == 200
    assert len(r.json()["data"]) == min(600, r.json()["total"])


def test_rate_limit_counts_down_then_429_like_the_capture(captures: dict[str, Capture]) -> None:
    cap_ok = captures["80_ratelimit20_req01_normal_headers.http"]
    cap = captures["82_ratelimit20_req21_429.http"]
    with (
        Simulator(seed=3, calls_per_day=50, now=NOW, rate_limit=(20, 60)) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        first = get(c, page=1, count=5, **DAY)
        for name in (
            "ratelimit-policy",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
        ):
            assert first.headers[name] == cap_ok.headers[name]
        remaining = [int(first.headers["ratelimit-remaining"])]
        for i in range(19):
            # failed-auth requests count too: the limiter runs before authentication
            r = get(c, key=ACCOUNT_KEY if i % 2 else "nope", page=1, count=5, **DAY)
            assert r.status_code in (200, 401)
            remaining.append(int(r.headers["ratelimit-remaining"]))
        assert remaining == list(range(19, -1, -1))
        r = get(c, page=1, count=5, **DAY)
        assert r.status_code == 429
        assert r.content == cap.body
        assert r.headers["content-type"] == cap.headers["content-type"]
        assert r.headers["x-powered-by"] == "Express"
        assert r.headers["ratelimit-remaining"] == "0"
        assert r.headers["retry-after"] == r.headers["ratelimit-reset"]
        assert 0 < int(r.headers["retry-after"]) <= 60
        assert sim.count_429 == 1
        assert sim.request_log[-1]["status"] == 429
        # a fresh window from set_rate_limit; consume() spends it as another client would
        sim.set_rate_limit(10, 60)
        sim.consume(4)
        r = get(c, page=1, count=5, **DAY)
        assert r.status_code == 200
        assert r.headers["ratelimit-remaining"] == "5"
        assert r.headers["ratelimit-policy"] == "10;w=60"
        sim.consume(100)
        assert get(c, page=1, count=5, **DAY).status_code == 429
        assert sim.count_429 == 2


def test_no_rate_limit_sends_no_headers_and_never_429() -> None:
    with (
        Simulator(seed=3, calls_per_day=50, now=NOW, rate_limit=None) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        sim.consume(10_000)
        r = get(c, page=1, count=5, **DAY)
        assert r.status_code == 200
        assert not any(k.startswith("ratelimit") for k in r.headers)
        assert sim.request_log[-1]["remaining"] is None


# --- semantics -----------------------------------------------------------------------------------


def test_count_zero_returns_every_row_and_matches_ground_truth(
    client: httpx.Client, simulator: Simulator
) -> None:
    body = get(client, page=1, count=0, **DAY).json()
    assert body["page_size"] == "0"
    assert body["total"] == len(body["data"]) > 200
    truth = simulator.calls(ACCOUNT_SID, D0, D0 + timedelta(hours=23, minutes=59, seconds=59.999))
    assert body["data"] == truth


def test_descending_order_and_paging(client: httpx.Client, simulator: Simulator) -> None:
    everything = get(client, page=1, count=0, **DAY).json()["data"]
    times = [attempted_ns(r["attempted_at"]) for r in everything]
    assert times == sorted(times, reverse=True)
    paged: list[dict[str, Any]] = []
    page = 1
    while True:
        body = get(client, page=page, count=50, **DAY).json()
        assert body["total"] == len(everything)
        if not body["data"]:
            break
        paged += body["data"]
        page += 1
    assert paged == everything
    assert page == -(-len(everything) // 50) + 1


def test_inclusive_bounds_at_nanosecond_precision(
    client: httpx.Client, simulator: Simulator
) -> None:
    at = "2026-11-21T12:00:00.123456789Z"
    rec = {k: None for k in SERVER_KEYS} | {
        "attempted_at": at,
        "account_sid": ACCOUNT_SID,
        "call_sid": "11111111-2222-4333-8444-555555555555",
        "answered": False,
    }
    simulator.add_records([rec])

    def sids(start: str, end: str) -> list[str | None]:
        data = get(client, page=1, count=0, start=start, end=end).json()["data"]
        return [r["call_sid"] for r in data]

    mine = rec["call_sid"]
    assert mine in sids("2026-11-21T11:00:00Z", at)  # end is inclusive
    assert mine not in sids("2026-11-21T11:00:00Z", "2026-11-21T12:00:00.123456788Z")
    assert mine in sids(at, "2026-11-21T13:00:00Z")  # start is inclusive
    assert mine not in sids("2026-11-21T12:00:00.12345679Z", "2026-11-21T13:00:00Z")
    served = [
        r
        for r in get(client, page=1, count=0, start=at, end=at).json()["data"]
        if r["call_sid"] == mine
    ]
    assert served == [rec]  # verbatim, 9 fraction digits kept


@pytest.mark.parametrize(
    ("start", "end", "expect_rows"),
    [
        ("2026-11-21", "2026-11-22", True),
        ("2026-11-21 00:00:00", "2026-11-21 23:59:59.999", True),
        ("2026-11-21T02:00:00+02:00", "2026-11-22T01:59:59.999999999+02:00", True),
        ("notadate", DAY_END, False),
        ("1763683200", "1763769599", False),  # epoch seconds: silently nothing
        ("2026-11-21T00:00:00", DAY_END, False),  # RFC 3339 without a zone
    ],
)
def test_start_end_formats(client: httpx.Client, start: str, end: str, expect_rows: bool) -> None:
    body = get(client, page=1, count=25, start=start, end=end).json()
    assert (body["total"] > 0) is expect_rows
    assert body["data"] == [] if not expect_rows else body["data"]


def test_a_raw_plus_in_an_offset_decodes_to_a_space_and_matches_nothing(
    client: httpx.Client,
) -> None:
    raw = f"{ACCT_PATH}?page=1&count=5&start=2026-11-21T02:00:00+02:00&end=2026-11-22T00:00:00Z"
    assert client.get(raw, headers=auth(ACCOUNT_KEY)).json()["total"] == 0
    encoded = raw.replace("+", "%2B")
    assert client.get(encoded, headers=auth(ACCOUNT_KEY)).json()["total"] > 0


def test_days_counts_back_from_the_clock_and_overrides_start_end(
    client: httpx.Client, simulator: Simulator
) -> None:
    body = get(client, page=1, count=0, days=1, **DAY).json()
    truth = simulator.calls(ACCOUNT_SID, NOW - timedelta(days=1), NOW + timedelta(seconds=1))
    assert body["total"] == len(truth) > 0
    assert [r["call_sid"] for r in body["data"]] == [r["call_sid"] for r in truth]
    assert all(r["attempted_at"] > "2026-11-24T06" for r in body["data"])


def test_answered_direction_trunk_and_filter(client: httpx.Client) -> None:
    everything = get(client, page=1, count=0, **DAY).json()
    total = everything["total"]
    yes = get(client, page=1, count=0, answered="true", **DAY).json()
    no = get(client, page=1, count=0, answered="false", **DAY).json()
    assert all(r["answered"] for r in yes["data"])
    assert not any(r["answered"] for r in no["data"])
    assert yes["total"] + no["total"] == total
    assert 0 < no["total"] < total
    assert get(client, page=1, count=0, answered="yes", **DAY).json()["total"] == total
    out = get(client, page=1, count=0, direction="outbound", **DAY).json()
    assert out["total"] > 0
    assert all(r["direction"] == "outbound" for r in out["data"])
    telnyx = get(client, page=1, count=0, trunk="telnyx", **DAY).json()
    assert telnyx["total"] > 0
    assert all(r["trunk"] == "telnyx" for r in telnyx["data"])
    assert get(client, page=1, count=0, trunk="Telnyx", **DAY).json()["total"] == 0
    # the worst trunk answers clearly less often
    rate_t = sum(r["answered"] for r in telnyx["data"]) / telnyx["total"]
    others = [r for r in everything["data"] if r["trunk"] != "telnyx"]
    assert rate_t + 0.2 < sum(r["answered"] for r in others) / len(others)
    # filter: substring (a regex) on from/to, exact on call_sid
    needle = everything["data"][0]["to"][1:7]
    hits = get(client, page=1, count=0, filter=needle, **DAY).json()["data"]
    assert hits
    assert all(needle in r["from"] or needle in r["to"] for r in hits)
    plus = get(client, page=1, count=0, filter=r"\+1", **DAY).json()["data"]
    assert plus
    assert all(r["from"].startswith("+") or r["to"].startswith("+") for r in plus)
    sid = next(r["call_sid"] for r in everything["data"] if r["call_sid"])
    assert [
        r["call_sid"] for r in get(client, page=1, count=0, filter=sid, **DAY).json()["data"]
    ] == [sid]


def test_service_provider_route_returns_both_accounts(client: httpx.Client) -> None:
    sp = get(client, SP_PATH, SERVICE_PROVIDER_KEY, page=1, count=0, **DAY).json()
    a = get(client, key=ADMIN_KEY, page=1, count=0, **DAY).json()
    other = f"/v1/Accounts/{OTHER_ACCOUNT_SID}/RecentCalls"
    b = get(client, other, OTHER_ACCOUNT_KEY, page=1, count=0, **DAY).json()
    assert sp["total"] == a["total"] + b["total"]
    assert {r["account_sid"] for r in sp["data"]} == {ACCOUNT_SID, OTHER_ACCOUNT_SID}
    times = [attempted_ns(r["attempted_at"]) for r in sp["data"]]
    assert times == sorted(times, reverse=True)
    assert get(client, other, ACCOUNT_KEY, page=1, count=1).status_code == 403
    assert get(client, other, SERVICE_PROVIDER_KEY, page=1, count=1).status_code == 200


@pytest.mark.parametrize("key", [ADMIN_KEY, SERVICE_PROVIDER_KEY])
def test_unknown_well_formed_account_is_an_empty_200(client: httpx.Client, key: str) -> None:
    path = "/v1/Accounts/00000000-1111-4222-8333-444444444444/RecentCalls"
    r = get(client, path, key, page=1, count=25)
    assert r.status_code == 200
    assert r.content == b'{"total":0,"page_size":"25","page":"1","data":[]}'


def test_visibility_follows_the_clock(client: httpx.Client, simulator: Simulator) -> None:
    clock = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    simulator.set_clock(clock)
    window = {"start": "2026-11-24T13:00:00Z", "end": "2026-11-24T14:00:00Z"}
    before = {r["sip_callid"] for r in get(client, page=1, count=0, **window).json()["data"]}
    simulator.advance(4 * 3600)
    after_data = get(client, page=1, count=0, **window).json()["data"]
    after = {r["sip_callid"] for r in after_data}
    assert before < after  # calls still running at 14:00 appear once they end
    late = [r for r in after_data if r["sip_callid"] not in before]
    assert all(r["terminated_at"] > "2026-11-24T13:59:40" for r in late)
    assert simulator.now == clock + timedelta(hours=4)


def test_retention_drops_old_calls() -> None:
    with (
        Simulator(seed=7, calls_per_day=200, now=NOW, retention_days=2) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        assert get(c, page=1, count=5, **DAY).json()["total"] == 0  # 4 days old
        assert sim.calls(ACCOUNT_SID, D0, D1) == []
        recent = {"start": "2026-11-24T00:00:00Z", "end": "2026-11-24T23:59:59Z"}
        assert get(c, page=1, count=5, **recent).json()["total"] > 0


def test_same_seed_same_calls_other_seed_other_calls() -> None:
    with (
        Simulator(seed=11, calls_per_day=300, now=NOW) as a,
        Simulator(seed=11, calls_per_day=300, now=NOW) as b,
        Simulator(seed=12, calls_per_day=300, now=NOW) as c,
    ):
        assert a.calls(ACCOUNT_SID, D0, D1) == b.calls(ACCOUNT_SID, D0, D1) != []
        assert a.calls(ACCOUNT_SID, D0, D1) != c.calls(ACCOUNT_SID, D0, D1)
        with httpx.Client(base_url=b.base_url) as client:
            served = get(client, page=1, count=0, start="2026-11-21", end="2026-11-22").json()
        assert served["data"] == a.calls(ACCOUNT_SID, D0, D1)


def test_docs_dialect_describes_the_same_calls() -> None:
    with (
        Simulator(seed=5, calls_per_day=300, now=NOW) as server,
        Simulator(seed=5, calls_per_day=300, now=NOW, dialect="docs") as docs,
        httpx.Client(base_url=docs.base_url) as c,
    ):
        body = get(c, page=1, count=40, **DAY).json()
        assert list(body) == ["total", "batch", "page", "data"]
        assert body["page"] == 1
        assert body["batch"] == 40
        assert isinstance(body["total"], int)
        truth_server = server.calls(ACCOUNT_SID, D0, D1)
        truth_docs = docs.calls(ACCOUNT_SID, D0, D1)
        assert body["data"] == truth_docs[:40]
        assert len(truth_server) == len(truth_docs) == body["total"]
        for s, d in zip(truth_server, truth_docs, strict=True):
            assert tuple(d)[:16] == DOCS_KEYS
            assert d["sip_call_id"] == s["sip_callid"]
            assert d["call_sid"] == s["call_sid"]
            assert d["attempted_at"] == attempted_ns(s["attempted_at"]) // 10**9
            assert d["terminated_at"] == attempted_ns(s["terminated_at"]) // 10**9
            if s["answered"]:
                assert d["answered_at"] == attempted_ns(s["answered_at"]) // 10**9
            else:
                assert d["answered_at"] is None
            assert d["duration"] == s["duration"]
            assert type(d["duration"]) is int


def test_rated_calls_carry_costs_after_the_21_keys_unless_costs_are_off(
    client: httpx.Client,
) -> None:
    data = get(client, page=1, count=0, **DAY).json()["data"]
    rated = [r for r in data if "rate" in r]
    assert 0.25 < len(rated) / len(data) < 0.45
    assert all(tuple(r)[21:] == ("cost", "rate", "billed_seconds") for r in rated)
    assert {r["trunk"] for r in rated} == {"twilio"}
    assert all(r["billed_seconds"] == 0 for r in rated if not r["answered"])
    with (
        Simulator(seed=7, calls_per_day=400, now=NOW, costs=False) as old,
        httpx.Client(base_url=old.base_url) as c,
    ):
        before = get(c, page=1, count=0, **DAY).json()["data"]
    assert not any("rate" in r for r in before)
    assert [{k: r[k] for k in b} for r, b in zip(data, before, strict=True)] == before


def test_injected_malformed_records_are_served_verbatim(
    client: httpx.Client, simulator: Simulator
) -> None:
    junk = {"attempted_at": "yesterday-ish", "account_sid": ACCOUNT_SID, "call_sid": "junk-1"}
    simulator.add_records([junk | {"_at": datetime(2026, 11, 21, 9, 30, tzinfo=UTC)}])
    data = get(client, page=1, count=0, **DAY).json()["data"]
    assert junk in data
    outside = {"start": "2026-11-22T00:00:00Z", "end": "2026-11-22T23:00:00Z"}
    assert junk not in get(client, page=1, count=0, **outside).json()["data"]


# --- fault knobs ----------------------------------------------------------------------------------


def test_server_errors_json_then_html_then_recover(
    client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults.server_errors = 1
    r = get(client, page=1, count=5, **DAY)
    assert r.status_code == 503
    assert r.json() == {"msg": "Service Unavailable"}
    simulator.faults = Faults(server_errors=1, server_error_status=502, server_error_html=True)
    r = get(client, page=1, count=5, **DAY)
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in r.text
    assert get(client, page=1, count=5, **DAY).status_code == 200
    assert [e["status"] for e in simulator.request_log] == [503, 502, 200]


def test_faults_apply_to_recentcalls_only(client: httpx.Client, simulator: Simulator) -> None:
    simulator.faults.server_errors = 1
    assert client.get("/v1/Accounts", headers=auth(ACCOUNT_KEY)).status_code == 404
    assert simulator.faults.server_errors == 1
    assert simulator.request_log == []


@pytest.mark.parametrize("with_retry_after", [True, False])
def test_storm_429(client: httpx.Client, simulator: Simulator, with_retry_after: bool) -> None:
    simulator.faults = Faults(storm_429=2, storm_429_retry_after=with_retry_after, retry_after_s=2)
    for _ in range(2):
        r = get(client, page=1, count=5, **DAY)
        assert r.status_code == 429
        assert r.text == "Too many requests, please try again later."
        assert r.headers.get("retry-after") == ("2" if with_retry_after else None)
    assert get(client, page=1, count=5, **DAY).status_code == 200
    assert simulator.count_429 == 2


def test_slow_responses_trip_a_client_timeout(simulator: Simulator) -> None:
    simulator.faults = Faults(slow_responses=1, slow_seconds=5)
    with httpx.Client(base_url=simulator.base_url, timeout=0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            get(c, page=1, count=5, **DAY)
        assert get(c, page=1, count=5, **DAY).status_code == 200


def test_truncated_body_sends_half_then_closes(simulator: Simulator) -> None:
    simulator.faults.truncated_bodies = 1
    host, port = simulator.base_url.removeprefix("http://").split(":")
    request = (
        f"GET {ACCT_PATH}?page=1&count=50&start=2026-11-21&end=2026-11-22 HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {ACCOUNT_KEY}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        raw = b""
        while chunk := s.recv(65536):  # the server closes: recv returns b""
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    assert len(body) == length // 2 > 0
    with httpx.Client(base_url=simulator.base_url) as c:
        simulator.faults.truncated_bodies = 1
        with pytest.raises(httpx.RemoteProtocolError):
            get(c, page=1, count=50, **DAY)
        assert get(c, page=1, count=50, **DAY).status_code == 200


def test_non_json_body_is_an_html_200(client: httpx.Client, simulator: Simulator) -> None:
    simulator.faults.non_json_bodies = 1
    r = get(client, page=1, count=5, **DAY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert get(client, page=1, count=5, **DAY).json()["total"] > 0


def test_reset_connection_gives_no_answer(client: httpx.Client, simulator: Simulator) -> None:
    simulator.faults.reset_connections = 1
    with pytest.raises(httpx.TransportError):
        get(client, page=1, count=5, **DAY)
    assert get(client, page=1, count=5, **DAY).status_code == 200
    assert simulator.request_log[0]["fault"] == "reset_connections"


def test_landing_lands_between_count_and_page(client: httpx.Client, simulator: Simulator) -> None:
    before = len(simulator.calls(ACCOUNT_SID, D0, D1))
    simulator.faults.landing_per_request = 3
    first = get(client, page=1, count=0, **DAY).json()
    assert first["total"] == before  # counted before the landing...
    assert len(first["data"]) == before + 3  # ...which the page already shows
    second = get(client, page=1, count=10, **DAY).json()
    assert second["total"] == before + 3
    truth = simulator.calls(ACCOUNT_SID, D0, D1)
    assert len(truth) == before + 6
    assert all(D0.isoformat()[:10] == r["attempted_at"][:10] for r in truth)
    simulator.faults.landing_per_request = 0
    assert get(client, page=1, count=0, **DAY).json()["data"] == truth


def test_repeat_previous_page_and_short_pages(client: httpx.Client, simulator: Simulator) -> None:
    p1 = get(client, page=1, count=20, **DAY).json()["data"]
    p2 = get(client, page=2, count=20, **DAY).json()["data"]
    assert p1 != p2
    simulator.faults.repeat_previous_page = 1
    assert get(client, page=1, count=20, **DAY).json()["data"] == p1  # page 1 is untouched
    assert get(client, page=2, count=20, **DAY).json()["data"] == p1
    assert get(client, page=2, count=20, **DAY).json()["data"] == p2
    simulator.faults.short_pages = 1
    assert get(client, page=2, count=20, **DAY).json()["data"] == p2[:-1]
    assert get(client, page=2, count=20, **DAY).json()["data"] == p2


def test_request_log_names_roles_never_keys(client: httpx.Client, simulator: Simulator) -> None:
    get(client, page=1, count=5, **DAY)
    get(client, SP_PATH, SERVICE_PROVIDER_KEY, page=0, count=5)
    log = simulator.request_log
    assert [(e["path"], e["status"], e["role"]) for e in log] == [
        (ACCT_PATH, 200, "account"),
        (SP_PATH, 400, "service_provider"),
    ]
    assert log[0]["params"] == {"page": "1", "count": "5", **DAY}
    assert log[0]["remaining"] == 599
    assert log[1]["remaining"] == 598
    text = repr(log)
    assert ACCOUNT_KEY not in text
    assert SERVICE_PROVIDER_KEY not in text


# --- command line --------------------------------------------------------------------------------


def test_cli_starts_answers_and_stops() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.jambonz.simulator",
            "--port",
            "0",
            "--seed",
            "3",
            "--calls-per-day",
            "100",
            "--no-rate-limit",
            "--now",
            "2026-11-25T06:00:00Z",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is up
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        banner = [proc.stdout.readline() for _ in range(9)]
        assert any(ACCOUNT_SID in b for b in banner)
        with httpx.Client(base_url=match.group(1)) as c:
            r = get(c, page=1, count=5, **DAY)
        assert r.status_code == 200
        assert r.json()["total"] > 0
        assert "ratelimit-limit" not in r.headers
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert ACCOUNT_KEY not in err


def test_keep_alive_lets_httpx_reuse_one_connection(
    client: httpx.Client, simulator: Simulator
) -> None:
    for page in range(1, 6):
        assert get(client, page=page, count=10, **DAY).status_code == 200
    assert simulator.connections == 1
