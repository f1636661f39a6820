"""The simulator's Alerts over real HTTP: it must answer as the captured jambonz server does.

Every test talks to a simulator on a loopback port through httpx (no mocks) and compares with
the alerts captures (tests/fixtures/real-responses/alerts-*.http) where one exists: the envelope,
the records' keys, their order and their JSON types, the error bodies byte for byte.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.jambonz.simulator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ADMIN_KEY,
    ALERT_KEYS,
    DAY_NS,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    UNDEFINED,
    Faults,
    Simulator,
    parse_time_param,
    series_key,
)
from tests.conftest import NOW, Capture

ACCT = f"/v1/Accounts/{ACCOUNT_SID}/Alerts"
OTHER = f"/v1/Accounts/{OTHER_ACCOUNT_SID}/Alerts"
SP = f"/v1/ServiceProviders/{SERVICE_PROVIDER_SID}/Alerts"
CALLS = f"/v1/Accounts/{ACCOUNT_SID}/RecentCalls"
DAY = {"start": "2026-11-21T00:00:00.000Z", "end": "2026-11-21T23:59:59.999Z"}
D0 = datetime(2026, 11, 21, tzinfo=UTC)
D1 = D0 + timedelta(days=1)
KEY_OF = {ACCT: ACCOUNT_KEY, OTHER: OTHER_ACCOUNT_KEY, SP: SERVICE_PROVIDER_KEY, CALLS: ACCOUNT_KEY}


def get(
    client: httpx.Client, path: str = ACCT, key: str | None = None, **params: Any
) -> httpx.Response:
    """The response (a 200's JSON body is `.json()`), with the path's own key unless given."""
    headers = {"Authorization": f"Bearer {key or KEY_OF[path]}"}
    return client.get(path, params=params, headers=headers)


def data(client: httpx.Client, path: str = ACCT, **params: Any) -> list[dict[str, Any]]:
    body = get(client, path, page=1, count=500, **params).json()
    assert body["total"] == len(body["data"]) < 500
    return list(body["data"])


def ns(record: dict[str, Any]) -> int:
    at = parse_time_param(record["time"])
    assert at is not None, record["time"]
    return at


def digits(record: dict[str, Any]) -> int:
    """How many fraction digits the record's time has."""
    _, _, frac = record["time"].rstrip("Z").partition(".")
    return len(frac)


@pytest.fixture
def client(simulator: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.base_url, timeout=10) as c:
        yield c


# --- shapes against the captures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "path"),
    [
        ("alerts-01_acctA_day1121_count100_page1.http", ACCT),
        ("alerts-03_sp_day1121_count500_page1.http", SP),
    ],
)
def test_envelope_and_records_have_the_captured_shape(
    client: httpx.Client, captures: dict[str, Capture], capture: str, path: str
) -> None:
    cap = captures[capture]
    count = cap.json()["page_size"]
    r = get(client, path, page=1, count=count, **DAY)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == list(cap.json()) == ["total", "page_size", "page", "data"]
    assert (body["page_size"], body["page"]) == (count, "1")
    assert type(body["total"]) is int
    assert body["total"] == len(body["data"]) > 10
    assert r.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert r.headers["content-type"] == cap.headers["content-type"]

    def types(records: list[dict[str, Any]]) -> dict[str, set[str]]:
        return {k: {type(r[k]).__name__ for r in records} for k in ALERT_KEYS}

    cap_records = cap.json()["data"]
    assert {tuple(r) for r in cap_records} == {tuple(r) for r in body["data"]} == {ALERT_KEYS}
    assert types(body["data"]) == types(cap_records)  # null detail/vendor on both sides too


def test_past_the_end_empty_window_and_count_over_500_match_the_captures(
    client: httpx.Client, captures: dict[str, Capture]
) -> None:
    total = get(client, page=1, count=100, **DAY).json()["total"]
    past = get(client, page=2, count=100, **DAY)  # alerts-02: 200, the same total, no data
    assert past.status_code == 200
    assert past.content == b'{"total":%d,"page_size":"100","page":"2","data":[]}' % total
    assert captures["alerts-02_acctA_day1121_count100_page2.http"].body.endswith(
        b',"page_size":"100","page":"2","data":[]}'
    )
    cases: tuple[tuple[str, dict[str, Any]], ...] = (
        (
            "alerts-04_acctA_empty_window.http",
            {
                "page": 1,
                "count": 25,
                "start": "2026-10-01T00:00:00Z",
                "end": "2026-10-02T00:00:00Z",
            },
        ),
        ("alerts-05_acctA_count501.http", {"page": 1, "count": 501, **DAY}),
    )
    for name, params in cases:
        cap = captures[name]
        r = get(client, **params)
        assert (r.status_code, r.content) == (cap.status, cap.body), name
        assert r.headers["content-type"] == cap.headers["content-type"]


@pytest.mark.parametrize(
    ("params", "which"),
    [
        ({"count": 25}, "page"),
        ({"page": 0, "count": 25}, "page"),
        ({"page": "x", "count": 25}, "page"),
        ({"page": 1}, "count"),
        ({"page": 1, "count": 0}, "count"),
        ({"page": 1, "count": 501}, "count"),
        ({"page": 1, "count": "ten"}, "count"),
    ],
)
def test_page_and_count_are_checked(
    client: httpx.Client, params: dict[str, Any], which: str
) -> None:
    r = get(client, **params)
    assert r.status_code == 400
    assert r.json() == {"msg": f'missing or invalid "{which}" query arg'}


# --- what a query selects -----------------------------------------------------------------------


def test_start_and_end_are_inclusive(
    client: httpx.Client, simulator: Simulator, captures: dict[str, Capture]
) -> None:
    day = data(client, **DAY)
    assert day[-1]["time"] == "2026-11-21T00:00:00Z"  # the day's own midnight: start inclusive
    assert all(r["time"] < "2026-11-22" for r in day)
    # alerts-08: an end at the next midnight returns that midnight's alert too
    cap = captures["alerts-08_acctA_inclusive_end_next_midnight.http"].json()
    to_midnight = get(client, page=1, count=3, start=DAY["start"], end="2026-11-22T00:00:00.000Z")
    body = to_midnight.json()
    assert body["total"] == len(day) + 1
    assert body["data"][0]["time"] == cap["data"][0]["time"] == "2026-11-22T00:00:00Z"
    assert body["data"][1:] == day[:2]
    # at the nanosecond, on an alert a test injects
    at = "2026-11-21T12:00:00.123456789Z"
    mine = {
        "time": at,
        "account_sid": ACCOUNT_SID,
        "alert_type": "alert-from-application",
        "detail": None,
        "message": "mine",
        "service_provider_sid": SERVICE_PROVIDER_SID,
        "vendor": None,
    }
    simulator.add_alerts([mine])
    before, after = "2026-11-21T12:00:00.123456788Z", "2026-11-21T12:00:00.12345679Z"
    assert mine in data(client, start=at, end=at)
    assert mine in data(client, start="2026-11-21T11:00:00Z", end=at)
    assert mine in data(client, start=at, end="2026-11-21T13:00:00Z")
    assert mine not in data(client, start="2026-11-21T11:00:00Z", end=before)
    assert mine not in data(client, start=after, end="2026-11-21T13:00:00Z")
    # the start/end forms RecentCalls reads, and its silent nothing for an epoch
    assert data(client, start="2026-11-21", end="2026-11-21 23:59:59.999") == data(client, **DAY)
    assert get(client, page=1, count=5, start="1763683200", end="1763769599").json()["total"] == 0


def test_newest_first_ties_by_tag_set_descending(client: httpx.Client) -> None:
    sp = data(client, SP, **DAY)
    order = [(ns(r), series_key(r)) for r in sp]
    assert order == sorted(order, reverse=True)
    assert len(set(order)) == len(order)  # a point is its time and tags: never twice
    ties = Counter(ns(r) for r in sp)
    # the instant the service provider hit its call limit: as in alerts-03, the SP's own alert
    # ("undefined" account), then account B's, then account A's (sids descending)
    limit = [r for r in sp if r["alert_type"] == "service-provider-call-limit"]
    at_limit = [r for r in sp if ties[ns(r)] == 3 and ns(r) in {ns(x) for x in limit}]
    assert [(r["account_sid"], r["alert_type"]) for r in at_limit] == [
        (UNDEFINED, "service-provider-call-limit"),
        (OTHER_ACCOUNT_SID, "account-call-limit"),
        (ACCOUNT_SID, "account-call-limit"),
    ]
    # three of account A's in one millisecond, in the order of alerts-01
    mine = data(client, **DAY)
    own_ties = Counter(ns(r) for r in mine)
    trio = [r for r in mine if own_ties[ns(r)] == 3]
    assert [(r["alert_type"], r["vendor"]) for r in trio] == [
        ("webhook-failure", None),
        ("tts-failure", "microsoft"),
        ("tts-failure", "google"),
    ]


def test_service_provider_and_account_routes_match_their_tags(client: httpx.Client) -> None:
    sp, a, b = data(client, SP, **DAY), data(client, ACCT, **DAY), data(client, OTHER, **DAY)
    assert all(r["account_sid"] == ACCOUNT_SID for r in a)
    assert all(r["account_sid"] == OTHER_ACCOUNT_SID for r in b)
    assert all(r["service_provider_sid"] == SERVICE_PROVIDER_SID for r in sp)
    own = [r for r in sp if r["account_sid"] == UNDEFINED]
    assert own
    assert {r["alert_type"] for r in own} <= {
        "service-provider-call-limit",
        "service-provider-api-limit",
        "service-provider-device-limit",
    }
    # the account route keeps the alerts written without the SP's sid; the SP route has not them
    no_sp = [r for r in a + b if r["service_provider_sid"] == UNDEFINED]
    assert no_sp
    assert not any(r in sp for r in no_sp)
    with_sp = [r for r in a + b if r["service_provider_sid"] == SERVICE_PROVIDER_SID]
    assert sorted(map(json.dumps, sp)) == sorted(map(json.dumps, with_sp + own))
    # keys and roles as for RecentCalls: an SP key reads an account's route alike (alerts-10)
    assert (
        data(client, ACCT, **DAY)
        == get(client, ACCT, SERVICE_PROVIDER_KEY, page=1, count=500, **DAY).json()["data"]
    )
    assert get(client, SP, ACCOUNT_KEY, page=1, count=5).status_code == 403
    assert get(client, OTHER, ACCOUNT_KEY, page=1, count=5).status_code == 403
    assert get(client, SP, "nope", page=1, count=5).status_code == 401
    unknown = "/v1/Accounts/00000000-1111-4222-8333-444444444444/Alerts"
    assert get(client, unknown, ADMIN_KEY, page=1, count=25).content == (
        b'{"total":0,"page_size":"25","page":"1","data":[]}'
    )


def test_alert_type_is_an_exact_match(client: httpx.Client) -> None:
    everything = data(client, SP, **DAY)
    by_type = Counter(r["alert_type"] for r in everything)
    assert len(by_type) > 5
    for alert_type, n in by_type.items():
        some = data(client, SP, alert_type=alert_type, **DAY)
        assert len(some) == n
        assert some == [r for r in everything if r["alert_type"] == alert_type]
    tts = data(client, alert_type="tts-failure", **DAY)
    assert tts
    assert all(r["vendor"] for r in tts)
    limit = data(client, SP, alert_type="service-provider-call-limit", **DAY)
    assert limit
    assert {r["account_sid"] for r in limit} == {UNDEFINED}  # alerts-09
    assert data(client, alert_type="TTS-failure", **DAY) == []
    assert data(client, alert_type="tts", **DAY) == []


def test_no_window_is_all_time_and_days_counts_back_from_the_clock(
    client: httpx.Client, simulator: Simulator
) -> None:
    body = get(client, page=1, count=25).json()  # alerts-06: every alert of the scope
    truth = simulator.alerts(ACCOUNT_SID)
    assert body["total"] == len(truth) > 25 * 10
    assert body["data"] == truth[:25]
    assert body["data"][0]["time"] < "2026-11-25T06:00:00.000000001Z"
    clock = simulator.clock_ns()
    for days in (1, 3):
        rolling = get(client, page=1, count=500, days=days, **DAY).json()  # start/end ignored
        window = simulator.alerts(ACCOUNT_SID, clock - days * DAY_NS + 1, clock + 1)
        assert rolling["total"] == len(rolling["data"]) == len(window) > 0
        assert rolling["data"] == window


def test_visibility_follows_the_clock(client: httpx.Client, simulator: Simulator) -> None:
    simulator.set_clock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    window = {"start": "2026-11-24T00:00:00Z", "end": "2026-11-24T23:59:59.999Z"}
    morning = data(client, SP, **window)
    assert morning
    assert all(r["time"] <= "2026-11-24T12:00:00Z" for r in morning)
    simulator.advance(12 * 3600)
    day = data(client, SP, **window)
    assert len(day) > len(morning)
    assert day[-len(morning) :] == morning  # the later ones come first: newest first
    d24 = datetime(2026, 11, 24, tzinfo=UTC)
    d25 = d24 + timedelta(days=1)  # the clock: 2026-11-25's midnight alerts are visible
    assert simulator.alerts(SERVICE_PROVIDER_SID, d24, d25, route="service_provider") == day


def test_the_rate_limit_bucket_is_shared_with_recentcalls() -> None:
    with (
        Simulator(seed=3, calls_per_day=50, now=NOW, rate_limit=(10, 60)) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        remaining = []
        for i in range(10):
            r = get(c, (ACCT, CALLS, SP)[i % 3], page=1, count=5, **DAY)
            assert r.status_code == 200
            remaining.append(int(r.headers["ratelimit-remaining"]))
        assert remaining == list(range(9, -1, -1))
        r = get(c, ACCT, page=1, count=5, **DAY)
        assert r.status_code == 429
        assert r.text == "Too many requests, please try again later."
        assert get(c, CALLS, page=1, count=5, **DAY).status_code == 429
        assert sim.count_429 == 2
        assert [e["path"] for e in sim.request_log[:3]] == [ACCT, CALLS, SP]


# --- generation -----------------------------------------------------------------------------------


def test_same_seed_same_alerts_other_seed_other_alerts_and_the_calls_stay_the_same() -> None:
    with (
        Simulator(seed=11, calls_per_day=300, now=NOW) as a,
        Simulator(seed=11, calls_per_day=300, now=NOW) as b,
        Simulator(seed=12, calls_per_day=300, now=NOW) as c,
    ):
        calls = a.calls(ACCOUNT_SID, D0, D1)
        truth = a.alerts(SERVICE_PROVIDER_SID, D0, D1, route="service_provider")
        assert truth == b.alerts(SERVICE_PROVIDER_SID, D0, D1, route="service_provider") != []
        assert truth != c.alerts(SERVICE_PROVIDER_SID, D0, D1, route="service_provider")
        assert a.calls(ACCOUNT_SID, D0, D1) == b.calls(ACCOUNT_SID, D0, D1) == calls
        with httpx.Client(base_url=b.base_url) as client:
            assert (
                data(client, SP, start="2026-11-21", end="2026-11-21T23:59:59.999999999Z") == truth
            )


def test_the_edge_cases_are_there_every_day(client: httpx.Client) -> None:
    for day in range(20, 25):
        start = f"2026-11-{day}T00:00:00Z"
        alerts = data(client, start=start, end=f"2026-11-{day}T23:59:59.999999999Z")
        assert alerts[-1]["time"] == start  # at midnight
        # several alerts of one millisecond, with different tags
        same_ms = Counter(ns(r) for r in alerts if digits(r) == 3)
        assert max(same_ms.values()) >= 3
        # two with the same tags apart only below the millisecond
        by_ms = Counter((ns(r) // 1_000_000, series_key(r)) for r in alerts)
        pair = [r for r in alerts if by_ms[ns(r) // 1_000_000, series_key(r)] == 2]
        assert len(pair) == 2
        assert pair[0]["time"][:23] == pair[1]["time"][:23]
        assert pair[0]["time"] != pair[1]["time"]
        assert {digits(r) for r in alerts} >= {0, 3, 6, 9}
        assert any(r["service_provider_sid"] == UNDEFINED for r in alerts)
        assert any(r["alert_type"] == "account-call-limit" for r in alerts)
        assert all(r["message"] for r in alerts)


def test_injected_alerts_are_served_verbatim_and_replace_a_point_of_the_same_tags(
    client: httpx.Client, simulator: Simulator
) -> None:
    first = data(client, **DAY)[0]
    again = dict(first, message="written again", detail="second write")
    junk = {"time": "noon-ish", "account_sid": ACCOUNT_SID, "odd": [1, 2]}
    simulator.add_alerts([again, junk | {"_at": D0 + timedelta(hours=12)}])
    day = data(client, **DAY)
    assert day[0] == again  # the same time and tags: one point, the last write's fields
    assert first not in day
    assert junk in day
    assert day == simulator.alerts(ACCOUNT_SID, D0, D1)
    # an injected alert of another account or another SP is on the route of its tags only
    theirs = dict(first, account_sid=OTHER_ACCOUNT_SID, service_provider_sid=UNDEFINED)
    simulator.add_alerts([theirs])
    assert theirs not in data(client, **DAY)
    assert theirs in data(client, OTHER, **DAY)
    assert theirs not in data(client, SP, **DAY)
    with pytest.raises(ValueError, match="parseable"):
        simulator.add_alerts([{"time": "noon-ish"}])


def test_docs_dialect_changes_the_envelope_only() -> None:
    with (
        Simulator(seed=5, calls_per_day=300, now=NOW, dialect="docs") as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        body = get(c, page=1, count=5, **DAY).json()
        assert list(body) == ["total", "batch", "page", "data"]
        assert (body["batch"], body["page"]) == (5, 1)
        assert body["data"] == sim.alerts(ACCOUNT_SID, D0, D1)[:5]
        assert all(tuple(r) == ALERT_KEYS for r in body["data"])


# --- fault knobs ----------------------------------------------------------------------------------


def test_faults_apply_to_alerts_requests(client: httpx.Client, simulator: Simulator) -> None:
    simulator.faults = Faults(server_errors=1, storm_429=1, retry_after_s=2)
    r = get(client, page=1, count=5, **DAY)
    assert (r.status_code, r.headers["retry-after"]) == (429, "2")
    assert get(client, SP, page=1, count=5, **DAY).status_code == 503
    assert get(client, page=1, count=5, **DAY).status_code == 200
    simulator.faults = Faults(non_json_bodies=1)
    assert get(client, page=1, count=5, **DAY).headers["content-type"].startswith("text/html")
    simulator.faults = Faults(reset_connections=1)
    with pytest.raises(httpx.TransportError):
        get(client, page=1, count=5, **DAY)
    assert [e["fault"] for e in simulator.request_log] == [
        "storm_429",
        "server_errors",
        None,
        "non_json_bodies",
        "reset_connections",
    ]


def test_faults_can_name_the_stream_they_apply_to(
    client: httpx.Client, simulator: Simulator
) -> None:
    simulator.faults = Faults(stream="RecentCalls", server_errors=1)
    assert get(client, page=1, count=5, **DAY).status_code == 200  # Alerts: not theirs
    assert simulator.faults.server_errors == 1
    assert get(client, CALLS, page=1, count=5, **DAY).status_code == 503
    simulator.faults = Faults(stream="Alerts", server_errors=1)
    assert get(client, CALLS, page=1, count=5, **DAY).status_code == 200
    assert get(client, SP, page=1, count=5, **DAY).status_code == 503


def test_landing_and_shifted_pages_apply_to_alerts(
    client: httpx.Client, simulator: Simulator
) -> None:
    before = len(simulator.alerts(SERVICE_PROVIDER_SID, D0, D1, route="service_provider"))
    simulator.faults.landing_per_request = 3
    first = get(client, SP, page=1, count=500, **DAY).json()
    assert first["total"] == before  # counted before the landing...
    assert len(first["data"]) == before + 3  # ...which the page already shows
    landed = simulator.alerts(SERVICE_PROVIDER_SID, D0, D1, route="service_provider")
    assert len(landed) == before + 3
    assert all(r["service_provider_sid"] == SERVICE_PROVIDER_SID for r in landed)
    typed = get(client, SP, page=1, count=500, alert_type="no-carrier", **DAY).json()["data"]
    assert sum(r["alert_type"] == "no-carrier" for r in typed) >= 3
    simulator.faults.landing_per_request = 0
    p1 = get(client, SP, page=1, count=10, **DAY).json()["data"]
    p2 = get(client, SP, page=2, count=10, **DAY).json()["data"]
    simulator.faults.repeat_previous_page = 1
    assert get(client, SP, page=2, count=10, **DAY).json()["data"] == p1
    simulator.faults.short_pages = 1
    assert get(client, SP, page=2, count=10, **DAY).json()["data"] == p2[:-1]
    assert get(client, SP, page=2, count=10, **DAY).json()["data"] == p2
