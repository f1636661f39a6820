"""window.stream_window over a `fetch` function: paging, dedupe, the window filter and repair,
from pages held in memory (no network, no simulator), as dlt tests its paginators."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.jambonz.errors import IncompleteWindowError
from pipelines.jambonz.pager import WindowStats, stream_window
from pipelines.jambonz.streams import (
    NS_PER_S,
    RECENT_CALLS,
    Page,
    Records,
    Scope,
    Window,
    format_ns,
    from_dicts,
    to_ns,
)
from tests.conftest import cdr

DAY = Window(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
SCOPE = Scope.account("acct")


class Server:
    """A RecentCalls server in memory: records newest first, filtered by [a, b), paged."""

    def __init__(self, n: int) -> None:
        step = timedelta(seconds=86_400 / (n + 1))
        self.records = [cdr(f"c-{i:05d}", DAY.start + step * (i + 1)) for i in range(n)]
        self.calls: list[tuple[int, int, int, int]] = []
        self.after_call: Callable[[int], None] = lambda _: None
        self._lock = threading.Lock()  # one request at a time, as each is numbered and answered

    def fetch(self, number: int, count: int, a: int, b: int) -> Page:
        total, data = self.answer(number, count, a, b)
        return Page(total, number, count, from_dicts(RECENT_CALLS, data), columnar=False)

    def answer(self, number: int, count: int, a: int, b: int) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            self.calls.append((number, count, a, b))
            inside = [r for r in self.records if a <= _ns(r) < b]
            inside.sort(key=_ns, reverse=True)
            page = inside[(number - 1) * count : number * count]
            self.after_call(len(self.calls))
        return len(inside), [dict(r) for r in page]


def _ns(record: dict[str, Any]) -> int:
    text = record["attempted_at"]
    return to_ns(datetime.fromisoformat(text.replace("Z", "+00:00")))


def run(server: Server, page_size: int = 100, concurrency: int = 1) -> tuple[list[Records], Any]:
    stats = WindowStats()
    stream = stream_window(
        server.fetch,
        SCOPE,
        DAY,
        page_size=page_size,
        concurrency=concurrency,
        stats=stats,
        monotonic=lambda: 0.0,
    )
    batches = list(stream)
    assert stream.result is not None
    return batches, stream.result


def sids(batches: list[Records]) -> list[str]:
    return [s for b in batches for s in b.table.column("call_sid").to_pylist()]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_stable_window_is_paged_once_without_repair(concurrency: int) -> None:
    server = Server(1_050)
    batches, result = run(server, concurrency=concurrency)
    assert sorted(sids(batches)) == sorted(r["call_sid"] for r in server.records)
    assert sorted(n for n, *_ in server.calls) == list(range(1, 12))
    assert (result.total, result.in_window, result.repairs) == (1_050, 1_050, 0)
    # the window's bounds go to the server as ns, the end exclusive
    assert {(a, b) for *_, a, b in server.calls} == {(to_ns(DAY.start), to_ns(DAY.end))}
    assert format_ns(to_ns(DAY.end) - 1).endswith(".999999999Z")


def test_calls_landing_mid_paging_are_found_by_repair_and_none_is_twice() -> None:
    """New calls land at the newest end after page 1: every later page shifts, repeating some
    calls; the paging pass misses the landed ones, which the repair finds."""
    server = Server(1_000)
    landed: list[dict[str, Any]] = []

    def land(n_calls: int) -> None:
        if n_calls in (1, 2, 3):
            at = DAY.end - timedelta(seconds=n_calls)
            landed.extend(cdr(f"late-{n_calls}-{k}", at) for k in range(7))
            server.records.extend(landed[-7:])

    server.after_call = land
    batches, result = run(server)
    got = sids(batches)
    assert len(got) == len(set(got)) == 1_021
    assert set(got) == {r["call_sid"] for r in server.records}
    assert result.duplicates_dropped > 0
    assert result.repairs > 0
    assert result.total == 1_021


def test_records_outside_the_window_are_dropped_and_unreadable_times_kept() -> None:
    server = Server(10)
    server.records.append(cdr("before", DAY.start - timedelta(microseconds=1)))
    server.records.append(cdr("no-time", DAY.start + timedelta(hours=1)))
    original = server.answer

    def answer(number: int, count: int, a: int, b: int) -> tuple[int, list[dict[str, Any]]]:
        total, data = original(number, count, a - NS_PER_S, b)  # a server that answers too wide
        for r in data:
            if r["call_sid"] == "no-time":
                r["attempted_at"] = "yesterday"
        return total, data

    server.answer = answer  # type: ignore[method-assign]
    batches, result = run(server)
    got = sids(batches)
    assert "before" not in got
    assert "no-time" in got  # the normalizer quarantines it, with its reason
    assert result.out_of_window_dropped == 1
    instants = {
        sid: t
        for b in batches
        for sid, t in zip(b.table.column("call_sid").to_pylist(), b.instants, strict=True)
    }
    assert instants["no-time"] is None
    assert instants["c-00000"] is not None


def test_a_window_that_never_completes_names_the_shortfall() -> None:
    server = Server(300)
    original = server.fetch

    def short(number: int, count: int, a: int, b: int) -> Page:
        page = original(number, count, a, b)  # claims 5 calls more than it ever serves
        return Page(page.total + 5, page.page, page.page_size, page.records, page.columnar)

    server.fetch = short  # type: ignore[method-assign]
    with pytest.raises(IncompleteWindowError, match=r"counts 305 calls but 300 were collected"):
        run(server)
