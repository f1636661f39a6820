"""Time faults: daylight-saving days, calls exactly at midnight, a machine clock in another zone.

Partitions in America/New_York: 2026-03-08 has 23 hours, 2026-11-01 has 25. Calls are injected
exactly at each local midnight around those days and 1 ns / 1 µs either side of it, in the
skipped and in the repeated hour; the process runs with TZ=Asia/Tokyo. Every call lands in
exactly one day, the one whose [local midnight, next local midnight) holds it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests.conftest import cdr
from tests.faults.conftest import MakePipeline, assert_window_exact

# about the API: the warehouse is only where the calls land (tests/conftest.py each_lane)
pytestmark = pytest.mark.one_lane

NY = ZoneInfo("America/New_York")


@pytest.fixture
def tokyo_machine() -> Iterator[None]:
    """The process's local time zone is Tokyo, far from both UTC and the partitions' zone."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        assert time.localtime(0).tm_hour == 9
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _rfc3339(at: datetime, extra_ns: int = 0) -> str:
    """UTC with nine fraction digits; extra_ns in -999..999 shifts below the microsecond."""
    ns = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000 + extra_ns
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def _call(sid: str, attempted: str) -> dict[str, Any]:
    return cdr(sid, attempted, failed=True)


def _edge_calls(days: list[date]) -> dict[str, date]:
    """sid -> the partition day it must land in, around each local midnight of `days`."""
    expected: dict[str, date] = {}
    for day in days:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=NY).astimezone(UTC)
        before = day - timedelta(days=1)
        for label, at, extra_ns, owner in (
            ("m-1us", midnight - timedelta(microseconds=1), 0, before),
            ("m-1ns", midnight, -1, before),
            ("m", midnight, 0, day),
            ("m+1ns", midnight, 1, day),
            ("m+1us", midnight + timedelta(microseconds=1), 0, day),
        ):
            expected[f"edge-{day.isoformat()}-{label}|{_rfc3339(at, extra_ns)}"] = owner
    return expected


@pytest.mark.parametrize(
    ("dst_day", "hours", "inside"),
    [
        # the skipped hour: 01:59:59.999999 EST and 03:00 EDT are one microsecond apart
        (date(2026, 3, 8), 23, ["2026-03-08T06:59:59.999999Z", "2026-03-08T07:00:00Z"]),
        # the repeated hour: 01:30 EDT and 01:30 EST are both on Nov 1
        (date(2026, 11, 1), 25, ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"]),
    ],
    ids=["spring-forward-23h", "fall-back-25h"],
)
def test_no_call_is_lost_or_doubled_at_the_edges_of_a_dst_day(
    make_pipeline: MakePipeline, tokyo_machine: None, dst_day: date, hours: int, inside: list[str]
) -> None:
    days = [dst_day - timedelta(days=1), dst_day, dst_day + timedelta(days=1)]
    window = day_window(dst_day, "America/New_York")
    assert window.end - window.start == timedelta(hours=hours)
    edges = _edge_calls([*days, days[-1] + timedelta(days=1)])
    for n, at in enumerate(inside):
        edges[f"dst-hour-{n}|{at}"] = dst_day
    now = datetime.combine(days[-1] + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    with Simulator(seed=5, calls_per_day=300, now=now) as sim:
        sim.add_records([_call(key.split("|")[0], key.split("|")[1]) for key in edges])
        pipeline = make_pipeline(
            sim, PARTITIONS_TIMEZONE="America/New_York", PARTITIONS_START_DATE="2026-01-01"
        )
        for day in days:
            result = pipeline.run_day(day)
            assert result.success
            for check in result.get_asset_check_evaluations():
                if check.check_name in (
                    "calls_complete",
                    "call_key_unique",
                    "model_attempts_match",
                ):
                    assert check.passed, (day, check.check_name)
        loaded = sum(assert_window_exact(pipeline, day) for day in days)
        with pipeline.connect(read_only=True) as con:
            rows = con.execute("SELECT call_key, attempted_at FROM calls").fetchall()
            attempts = con.execute(
                "SELECT day, sum(attempts) FROM answer_rates_daily GROUP BY day ORDER BY day"
            ).fetchall()
    assert len(rows) == loaded, "a call of these days was loaded twice or outside them"
    held = dict(rows)
    for key, owner in edges.items():
        sid = key.split("|")[0]
        if owner not in days:
            assert sid not in held, f"{sid} belongs to a day not synced"
            continue
        assert sid in held, f"{sid} was lost"
        w = day_window(owner, "America/New_York")
        assert w.start <= held[sid] < w.end, f"{sid} at {held[sid]} is not in {owner}"
    per_day = {d: sum(1 for at in held.values() if _in(at, d)) for d in days}
    assert [(d, n) for d, n in attempts] == [(d, per_day[d]) for d in days]


def _in(at: datetime, day: date) -> bool:
    w = day_window(day, "America/New_York")
    return w.start <= at < w.end
