"""Windows against the simulator over loopback: exactly once, both dialects, edges, landing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.jambonz.errors import IncompleteWindowError
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.simulator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    Simulator,
)
from pipelines.jambonz.streams import REQUIRED_KEYS, Scope, Window
from tests.conftest import NOW
from tests.helpers import fetch_window, record_identity

DAY = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
ACCOUNT = Scope.account(ACCOUNT_SID)


def identities(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(record_identity(r) for r in records)


def assert_exactly_once(got: list[dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    seen = identities(got)
    assert [k for k, n in seen.items() if n > 1] == []
    assert set(seen) == set(identities(truth))


class LandingFor(httpx.HTTPTransport):
    """Real HTTP; turns the simulator's landing fault off after `n` requests.

    Landing never stops by itself, and the calls that land during the last request are by
    construction unseen by anyone; stopping it makes the ground truth comparable.
    """

    def __init__(self, sim: Simulator, n: int) -> None:
        super().__init__()
        self.sim, self.left = sim, n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.left -= 1
        if self.left == 0:
            self.sim.faults.landing_per_request = 0
        return response


@pytest.mark.slow  # 21 s: the inner loop keeps the 2k-call landing cases below; make test runs it
def test_a_20k_day_with_records_landing_mid_paging_comes_back_exactly_once() -> None:
    with Simulator(seed=11, calls_per_day=20000, rate_limit=None, now=NOW) as sim:
        with JambonzClient(sim.base_url, ACCOUNT_KEY, fallback_rate=None) as plain_client:
            plain = fetch_window(plain_client, ACCOUNT, DAY)
        assert plain.repairs == 0
        assert plain.requests == plain.pages == -(-plain.total // 500)

        sim.faults.landing_per_request = 3
        transport = LandingFor(sim, 60)  # the whole paging pass and a good part of the repair
        with JambonzClient(
            sim.base_url, ACCOUNT_KEY, fallback_rate=None, _transport=transport
        ) as client:
            result = fetch_window(client, ACCOUNT, DAY)
        truth = sim.calls(ACCOUNT_SID, DAY.start, DAY.end)
    landed = sum(1 for e in sim.request_log if e.get("fault") == "landing_per_request")
    assert landed == 60
    assert len(truth) == plain.total + 3 * 60
    assert_exactly_once(result.records, truth)
    assert result.total == len(truth)
    assert result.repairs > 0
    assert result.duplicates_dropped > 0
    print(
        f"\n20k day: plain {plain.requests} requests; with landing {result.requests} "
        f"({result.repairs} repairs)"
    )


def test_landing_faster_than_a_page_is_refused_not_returned_partial() -> None:
    with Simulator(seed=12, calls_per_day=2000, rate_limit=None, now=NOW) as sim:
        sim.faults.landing_per_request = 600  # more than a page of 500 per request
        with (
            JambonzClient(sim.base_url, ACCOUNT_KEY, fallback_rate=None) as client,
            pytest.raises(IncompleteWindowError) as info,
        ):
            fetch_window(client, ACCOUNT, DAY)
    message = str(info.value)
    assert "short by" in message
    assert ACCOUNT_SID in message
    assert "2026-11-23" in message


def test_both_dialects_parse_to_the_same_calls() -> None:
    got = {}
    for dialect in ("server", "docs"):
        with (
            Simulator(seed=5, calls_per_day=600, dialect=dialect, now=NOW) as sim,
            JambonzClient(sim.base_url, ACCOUNT_KEY, page_size=100) as client,
        ):
            result = fetch_window(client, ACCOUNT, DAY)
            assert result.out_of_window_dropped == 0
            got[dialect] = identities(result.records)
    assert got["server"] == got["docs"]
    assert len(got["server"]) > 500
    assert max(got["server"].values()) == 1


def test_an_empty_window_is_total_zero(simulator: Simulator) -> None:
    empty = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    with JambonzClient(simulator.base_url, ACCOUNT_KEY) as client:
        result = fetch_window(client, ACCOUNT, empty)
    assert (result.total, result.records, result.requests) == (0, [], 1)


def _edge_record(template: dict[str, Any], sid: str, at: str) -> dict[str, Any]:
    return {**template, "call_sid": sid, "attempted_at": at}


def test_midnight_belongs_to_the_later_day_and_the_last_half_ms_to_its_day(
    simulator: Simulator,
) -> None:
    template = simulator.calls(ACCOUNT_SID, DAY.start, DAY.end)[0]
    simulator.add_records(
        [
            _edge_record(template, "edge-midnight", "2026-11-24T00:00:00Z"),
            _edge_record(template, "edge-late", "2026-11-23T23:59:59.9995Z"),
            _edge_record(template, "edge-last-ns", "2026-11-23T23:59:59.999999999Z"),
            _edge_record(template, "edge-first", "2026-11-23T00:00:00.000Z"),
        ]
    )
    next_day = Window(DAY.end, DAY.end + timedelta(days=1))
    with JambonzClient(simulator.base_url, ACCOUNT_KEY, page_size=100) as client:
        today = identities(fetch_window(client, ACCOUNT, DAY).records)
        tomorrow = identities(fetch_window(client, ACCOUNT, next_day).records)
    assert {"edge-late", "edge-last-ns", "edge-first"} <= set(today)
    assert "edge-midnight" not in today
    assert "edge-midnight" in tomorrow
    assert not {"edge-late", "edge-last-ns", "edge-first"} & set(tomorrow)


def test_service_provider_route_with_concurrency(simulator: Simulator) -> None:
    scope = Scope.service_provider(SERVICE_PROVIDER_SID)
    with JambonzClient(
        simulator.base_url, SERVICE_PROVIDER_KEY, page_size=50, concurrency=4
    ) as client:
        result = fetch_window(client, scope, DAY)
    truth = simulator.calls(SERVICE_PROVIDER_SID, DAY.start, DAY.end, route="service_provider")
    assert_exactly_once(result.records, truth)
    assert len({r["account_sid"] for r in result.records}) == 2
    assert result.pages == result.requests == -(-len(truth) // 50)
    assert all(e["path"].startswith("/v1/ServiceProviders/") for e in simulator.request_log)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_columnar_stream_with_records_landing_mid_paging_is_exactly_once(
    concurrency: int,
) -> None:
    """The sync's stream: pages read as columns, one parsed while the next is fetched (or three
    in flight), calls landing mid-paging, a repair: every call once, as with dicts."""
    with Simulator(seed=12, calls_per_day=8000, rate_limit=None, now=NOW) as sim:
        sim.faults.landing_per_request = 3
        transport = LandingFor(sim, 30)
        with JambonzClient(
            sim.base_url,
            ACCOUNT_KEY,
            fallback_rate=None,
            concurrency=concurrency,
            _transport=transport,
        ) as client:
            stream = client.stream_window(ACCOUNT, DAY)
            batches = list(stream)
        truth = sim.calls(ACCOUNT_SID, DAY.start, DAY.end)
    keys = [k for b in batches for k in b.keys]
    # each record's key is the one the rule gives the record itself
    records = [b.record(i, REQUIRED_KEYS) for b in batches for i in range(len(b))]
    assert keys == [record_identity(r) for r in records]
    assert stream.result is not None
    assert stream.result.columnar_pages > 0
    assert stream.result.repairs > 0
    assert [k for k, n in Counter(keys).items() if n > 1] == []
    assert set(keys) == set(identities(truth))
    assert stream.result.total == len(truth) == len(keys)
