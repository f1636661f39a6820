"""The daily models equal a brute-force Python computation over the same calls."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import load_window, normalize_dicts
from warehouse.database import Warehouse

DAYS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
TRUNKS = ["twilio", "telnyx", "voxbone", "Microsoft Teams", None]
ACCOUNTS = ["acct-a", "acct-b"]
REASONS = ["caller hungup", "called party hungup", "failed", "caller abandoned"]
FAILURES = [404, 480, 486, 487, 500, 503, 603]


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def generate(seed: int, n: int) -> list[dict[str, Any]]:
    """Server-dialect records spread over DAYS (and the edges of the days around them)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 19, 12, tzinfo=UTC)
    records = []
    for i in range(n):
        attempted = start + timedelta(seconds=rng.randrange(4 * 86400))
        answered = rng.random() < 0.6
        duration = rng.choice([rng.randrange(1, 60), rng.randrange(60, 3600)]) if answered else 0
        direction = rng.choice(["inbound", "outbound"])
        no_sid = not answered and direction == "inbound" and rng.random() < 0.2
        answered_at = attempted + timedelta(seconds=rng.randrange(1, 20))
        records.append(
            {
                "attempted_at": iso(attempted),
                "account_sid": rng.choice(ACCOUNTS),
                "answered": answered,
                "answered_at": iso(answered_at) if answered else "1970-01-01T00:00:00.000Z",
                "application_sid": None,
                "call_sid": None if no_sid else f"call-{seed}-{i}",
                "direction": direction,
                "duration": duration,
                "from": "15550000000",
                "host": "10.0.0.1",
                "recording_url": None,
                "remote_host": "3.4.5.6",
                "service_provider_sid": "sp",
                "sip_callid": f"sip-{seed}-{i}@10.0.0.2",
                "sip_parent_callid": None,
                "sip_status": 200 if answered else rng.choice(FAILURES),
                "terminated_at": iso(answered_at + timedelta(seconds=duration)),
                "termination_reason": rng.choice([*REASONS[:2], None])
                if answered
                else rng.choice(REASONS[2:]),
                "to": "15551111111",
                "trace_id": "0" * 32,
                "trunk": rng.choice(TRUNKS),
            }
        )
    return records


def quantile_cont(xs: list[float], q: float) -> float:
    """DuckDB quantile_cont: linear interpolation at position q * (n - 1) of the sorted values."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC), (local + timedelta(days=1)).astimezone(UTC)


def expected(
    rows: list[dict[str, Any]], day: date, tz: str
) -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], tuple[Any, ...]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["attempted_at"].astimezone(ZoneInfo(tz)).date() == day:
            groups[(day, r["account_sid"], r["direction"], r["trunk"])].append(r)
    durations, rates = {}, {}
    for key, calls in groups.items():
        answered = [c for c in calls if c["answered"]]
        unanswered = [c for c in calls if not c["answered"]]
        if answered:
            d = [float(c["duration"]) for c in answered]
            durations[key] = (
                len(d),
                int(sum(d)),
                sum(d) / len(d),
                quantile_cont(d, 0.5),
                quantile_cont(d, 0.9),
                quantile_cont(d, 0.99),
                int(max(d)),
            )
        reasons = Counter(c["termination_reason"] for c in calls if c["termination_reason"])
        top = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[0] if reasons else None

        def failures(cls: int, unanswered: list[dict[str, Any]] = unanswered) -> int:
            return sum(1 for c in unanswered if c["sip_status"] // 100 == cls)

        rates[key] = (
            len(calls),
            len(answered),
            len(answered) / len(calls),
            failures(4),
            failures(5),
            failures(6),
            top,
        )
    return durations, rates


def as_dict(wh: Warehouse, table: str, day: date) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    query = f"SELECT * EXCLUDE (complete) FROM {table} WHERE day = $day"  # noqa: S608
    rows = wh.con.execute(query, {"day": day}).fetchall()
    return {row[:4]: row[4:] for row in rows}


def assert_same(got: dict[Any, tuple[Any, ...]], want: dict[Any, tuple[Any, ...]]) -> None:
    assert got.keys() == want.keys()
    for key, values in want.items():
        for g, w in zip(got[key], values, strict=True):
            assert g == (pytest.approx(w, rel=1e-12) if isinstance(w, float) else w), key


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Warehouse, list[dict[str, Any]]]]:
    records = generate(seed=11, n=3000)
    synced = datetime(2026, 11, 25, tzinfo=UTC)
    ws, we = datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    n = normalize_dicts(records, synced_at=synced, scope_sid="sp", window_start=ws, window_end=we)
    assert n.quarantine.num_rows == 0
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        load_window(wh, n.calls, n.raw, n.quarantine, window_start=ws, window_end=we)
        yield wh, n.calls.to_pylist()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_models_equal_brute_force(loaded: tuple[Warehouse, list[dict[str, Any]]], tz: str) -> None:
    wh, rows = loaded
    assert len({r["trunk"] for r in rows}) >= 3
    assert any(r["call_sid"] is None for r in rows)
    for day in DAYS:
        ws, we = day_bounds(day, tz)
        args = {"day": day, "tz": tz, "window_start": ws, "window_end": we}
        want_durations, want_rates = expected(rows, day, tz)
        assert wh.rebuild_model("call_durations_daily", **args) == len(want_durations)
        assert wh.rebuild_model("answer_rates_daily", **args) == len(want_rates)
        assert len(want_rates) >= 10
        assert_same(as_dict(wh, "call_durations_daily", day), want_durations)
        assert_same(as_dict(wh, "answer_rates_daily", day), want_rates)


def test_rebuild_replaces_only_its_day(loaded: tuple[Warehouse, list[dict[str, Any]]]) -> None:
    wh, _ = loaded
    for day in DAYS:
        ws, we = day_bounds(day, "UTC")
        wh.rebuild_model("answer_rates_daily", day=day, tz="UTC", window_start=ws, window_end=we)
    before = wh.con.execute("SELECT * FROM answer_rates_daily ORDER BY ALL").fetchall()
    ws, we = day_bounds(DAYS[1], "UTC")
    for _ in range(2):
        wh.rebuild_model(
            "answer_rates_daily", day=DAYS[1], tz="UTC", window_start=ws, window_end=we
        )
    assert wh.con.execute("SELECT * FROM answer_rates_daily ORDER BY ALL").fetchall() == before
    wh.con.execute("DELETE FROM calls WHERE attempted_at >= $ws AND attempted_at < $we",
                   {"ws": ws, "we": we})  # fmt: skip
    assert (
        wh.rebuild_model(
            "answer_rates_daily", day=DAYS[1], tz="UTC", window_start=ws, window_end=we
        )
        == 0
    )
    after = wh.con.execute("SELECT DISTINCT day FROM answer_rates_daily ORDER BY day").fetchall()
    assert after == [(DAYS[0],), (DAYS[2],)]


def test_unknown_model_is_refused(loaded: tuple[Warehouse, list[dict[str, Any]]]) -> None:
    wh, _ = loaded
    ws, we = day_bounds(DAYS[0], "UTC")
    with pytest.raises(KeyError, match="no model"):
        wh.rebuild_model("calls; DROP TABLE calls", day=DAYS[0], tz="UTC", window_start=ws,
                         window_end=we)  # fmt: skip
