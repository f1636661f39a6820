"""trunk_kpis_daily and calls_hourly equal a brute-force Python computation over the same calls:
statuses of every class (3xx included), calls without call_sid, a burst within one second, calls
crossing midnight (one running for more than a day), back-to-back calls, the DST days of
America/New_York (23 and 25 hours) and a half-hour zone (Asia/Kolkata)."""

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
from tests.integration.test_models import day_bounds, iso, quantile_cont
from warehouse.database import Warehouse

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRUNKS = ["twilio", "telnyx", None]
STATUSES = [302, 403, 404, 408, 480, 484, 486, 487, 500, 503, 504, 600, 603, 606, None]
# 2026-03-08 has 23 hours in New York, 2026-11-01 has 25
DAYS = [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9), date(2026, 11, 1), date(2026, 11, 2)]


def record(i: int, attempted: datetime, rng: random.Random, **over: Any) -> dict[str, Any]:
    answered = rng.random() < 0.55
    delay_ms = rng.randrange(300, 25_000)
    answered_at = attempted + timedelta(milliseconds=delay_ms)
    duration = rng.choice([rng.randrange(0, 6), rng.randrange(6, 900)]) if answered else 0
    ended = answered_at + timedelta(seconds=duration) if answered else answered_at
    direction = rng.choice(["inbound", "outbound"])
    r = {
        "attempted_at": iso(attempted),
        "account_sid": "acct",
        "answered": answered,
        "answered_at": iso(answered_at) if answered else "1970-01-01T00:00:00.000Z",
        "application_sid": None,
        "call_sid": None if (not answered and rng.random() < 0.1) else f"call-{i}",
        "direction": direction,
        "duration": duration,
        "from": "15550000000",
        "host": "10.0.0.1",
        "recording_url": None,
        "remote_host": "3.4.5.6",
        "service_provider_sid": "sp",
        "sip_callid": f"sip-{i}@10.0.0.2",
        "sip_parent_callid": None,
        "sip_status": 200 if answered else rng.choice(STATUSES),
        "terminated_at": iso(ended),
        "termination_reason": "caller hungup" if answered else "failed",
        "to": "15551111111",
        "trace_id": "0" * 32,
        "trunk": rng.choice(TRUNKS),
    }
    if r["trunk"] == TRUNKS[0] and direction == "outbound":  # rated by the managed carrier
        billed = -(-duration // 6) * 6
        r.update(cost=round(billed * 0.012 / 60, 6), rate=0.012, billed_seconds=billed)
    r.update(over)
    return r


def generate(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for first in (datetime(2026, 3, 6, 12, tzinfo=UTC), datetime(2026, 10, 31, 0, tzinfo=UTC)):
        for _ in range(1_500):
            out.append(record(len(out), first + timedelta(seconds=rng.randrange(4 * 86_400)), rng))
    ny = ZoneInfo("America/New_York")
    burst = datetime(2026, 3, 8, 15, 0, 7, tzinfo=ny)
    for k in range(9):  # one whole second, one trunk: peak_cps 9 (at least)
        at = burst + timedelta(milliseconds=100 * k)
        out.append(record(len(out), at, rng, trunk="twilio", direction="outbound"))
    for day in (date(2026, 3, 8), date(2026, 11, 1)):  # calls across midnight, in both zones
        for zone in (UTC, ny):
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            for minutes, hours in ((-30, 2), (-5, 1), (-1_800, 40)):  # the last: over a day
                at = start + timedelta(minutes=minutes)
                end = at + timedelta(hours=hours)
                out.append(
                    record(
                        len(out), at, rng, answered=True, answered_at=iso(at),
                        terminated_at=iso(end), duration=hours * 3600, sip_status=200,
                        trunk="telnyx", direction="inbound",
                    )
                )  # fmt: skip
    for day in DAYS:  # back to back: one ends as the next starts, never two at once
        at = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
        for k in range(2):
            start, end = at + timedelta(minutes=k), at + timedelta(minutes=k + 1)
            out.append(
                record(
                    len(out), start, rng, account_sid="acct-b2b", answered=True,
                    answered_at=iso(start), terminated_at=iso(end), duration=60,
                    sip_status=200, trunk="twilio", direction="outbound",
                )
            )  # fmt: skip
    zero = datetime(2026, 11, 1, 12, tzinfo=UTC)  # ends as it starts: never in progress
    out.append(record(len(out), zero, rng, terminated_at=iso(zero), answered=False))
    return out


def ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def expected(
    rows: list[dict[str, Any]], day: date, tz: str
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    ws, we = day_bounds(day, tz)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    carried: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key = (day, r["account_sid"], r["direction"], r["trunk"])
        if ws <= r["attempted_at"] < we:
            groups[key].append(r)
        elif r["attempted_at"] < ws and r["terminated_at"] > ws:
            carried[key].append(r)
    out = {}
    for key, calls in groups.items():
        ans = [c for c in calls if c["answered"]]
        un = [c for c in calls if not c["answered"]]

        def n(*codes: int, un: list[dict[str, Any]] = un) -> int:
            return sum(1 for c in un if c["sip_status"] in codes)

        redirected = sum(
            1 for c in un if c["sip_status"] is not None and 300 <= c["sip_status"] < 400
        )
        network = sum(
            1 for c in un if c["sip_status"] == 408 or 500 <= (c["sip_status"] or 0) < 600
        )
        busy, no_answer, rejected, abandoned = n(486, 600), n(480), n(603), n(487)
        attempts = len(calls)
        other = attempts - len(ans) - busy - no_answer - rejected - abandoned - network
        base = attempts - redirected
        delays = [
            (ms(c["answered_at"]) - ms(c["attempted_at"])) / 1000 for c in ans if c["answered_at"]
        ]
        spans = [
            (c["attempted_at"], c["terminated_at"])
            for c in calls
            if c["terminated_at"] > c["attempted_at"]
        ]
        spans += [(ws, c["terminated_at"]) for c in carried[key]]
        peak = max((sum(1 for s, e in spans if s <= x < e) for x, _ in spans), default=0)
        seconds = Counter((c["attempted_at"] - EPOCH) // timedelta(seconds=1) for c in calls)
        talk = sum(c["duration"] for c in ans)
        short = sum(1 for c in ans if c["duration"] < 6)
        costs = [c["cost"] for c in calls if c["cost"] is not None]
        billed = [c["billed_seconds"] for c in calls if c["billed_seconds"] is not None]
        out[key] = (
            attempts, len(ans), len(ans) / attempts, busy, no_answer, rejected, abandoned, network,
            other, len(ans) / base if base else None,
            (len(ans) + n(480, 486, 600, 603)) / base if base else None,
            n(408, 500, 503, 504) / attempts, talk, talk / len(ans) if ans else None, short,
            short / len(ans) if ans else None,
            quantile_cont(delays, 0.5) if delays else None,
            quantile_cont(delays, 0.9) if delays else None,
            peak, max(seconds.values()),
            math.fsum(costs) if costs else None, sum(billed) if billed else None,
        )  # fmt: skip
    return out


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Warehouse, list[dict[str, Any]]]]:
    records = generate(seed=5)
    synced = datetime(2026, 11, 25, tzinfo=UTC)
    ws, we = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)
    n = normalize_dicts(records, synced_at=synced, scope_sid="sp", window_start=ws, window_end=we)
    assert n.quarantine.num_rows == 0
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        load_window(wh, n.calls, n.raw, n.quarantine, window_start=ws, window_end=we)
        yield wh, n.calls.to_pylist()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_trunk_kpis_equal_brute_force(
    loaded: tuple[Warehouse, list[dict[str, Any]]], tz: str
) -> None:
    wh, rows = loaded
    assert any(r["call_sid"] is None for r in rows)
    seen_redirect = seen_carried = seen_burst = seen_cost = False
    for day in DAYS:
        ws, we = day_bounds(day, tz)
        want = expected(rows, day, tz)
        got_n = wh.rebuild_model("trunk_kpis_daily", day=day, tz=tz, window_start=ws, window_end=we)
        assert got_n == len(want) >= 4
        got = wh.con.execute(
            "SELECT * EXCLUDE (complete) FROM trunk_kpis_daily WHERE day = $day", {"day": day}
        ).fetchall()
        assert {g[:4] for g in got} == want.keys()
        for g in got:
            w = want[g[:4]]
            for name, a, b in zip(COLUMNS, g[4:], w, strict=True):
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-12, abs=1e-12), (g[:4], name)
                else:
                    assert a == b, (g[:4], name)
            assert sum(g[5:6]) + sum(g[7:13]) == g[4]  # the six counts plus answered: attempts
        seen_redirect |= any(w[9] is not None and w[9] != w[1] / w[0] for w in want.values())
        seen_carried |= any(r["attempted_at"] < ws < r["terminated_at"] for r in rows)
        seen_burst |= any(w[COLUMNS.index("peak_cps")] >= 9 for w in want.values())
        costs = [w[COLUMNS.index("cost")] for w in want.values()]
        seen_cost |= any(c is None for c in costs) and any(c is not None for c in costs)
        b2b = want[(day, "acct-b2b", "outbound", "twilio")]
        assert b2b[COLUMNS.index("peak_concurrent")] == 1  # [s, e): never two
    assert seen_redirect, "no day had a 3xx to tell SER from ASR"
    assert seen_carried, "no call crossed a day's start"
    assert seen_burst, "no burst of 9 attempts in one second"
    assert seen_cost, "no group with costs beside one without"


COLUMNS = (
    "attempts", "answered", "asr", "busy", "no_answer", "rejected", "abandoned",
    "network_failures", "other_failures", "ser", "seer", "isa", "talk_seconds", "acd_s",
    "short_calls", "short_call_ratio", "answer_delay_p50_s", "answer_delay_p90_s",
    "peak_concurrent", "peak_cps", "cost", "billed_seconds",
)  # fmt: skip


def local_hour(ts: datetime, tz: str) -> datetime:
    """The instant ts's local hour starts (fold kept: the repeated hour stays apart)."""
    local = ts.astimezone(ZoneInfo(tz))
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def expected_hourly(
    rows: list[dict[str, Any]], day: date, tz: str
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    ws, we = day_bounds(day, tz)
    hours: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    spans: dict[tuple[Any, ...], list[tuple[datetime, datetime]]] = defaultdict(list)
    for r in rows:
        group = (r["account_sid"], r["direction"], r["trunk"])
        if ws <= r["attempted_at"] < we:
            hours[(local_hour(r["attempted_at"], tz), *group)].append(r)
            if r["terminated_at"] > r["attempted_at"]:
                spans[group].append((r["attempted_at"], r["terminated_at"]))
        elif r["attempted_at"] < ws < r["terminated_at"]:
            spans[group].append((ws, r["terminated_at"]))
    out = {}
    for (hour, *group), calls in hours.items():
        mine = spans[tuple(group)]
        candidates = [hour] + [s for s, _ in mine if hour <= s < hour + timedelta(hours=1)]
        peak = max(sum(1 for s, e in mine if s <= x < e) for x in candidates)
        answered = [c for c in calls if c["answered"]]
        out[(hour, day, *group)] = (
            len(calls),
            len(answered),
            sum(c["duration"] for c in answered),
            peak,
        )
    return out


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])  # Kolkata: +05:30
def test_calls_hourly_equal_brute_force(
    loaded: tuple[Warehouse, list[dict[str, Any]]], tz: str
) -> None:
    wh, rows = loaded
    for day in DAYS:
        ws, we = day_bounds(day, tz)
        want = expected_hourly(rows, day, tz)
        got_n = wh.rebuild_model("calls_hourly", day=day, tz=tz, window_start=ws, window_end=we)
        assert got_n == len(want)
        got = wh.con.execute(
            "SELECT * EXCLUDE (complete) FROM calls_hourly WHERE day = $day", {"day": day}
        ).fetchall()
        assert {g[:5]: g[5:] for g in got} == want
        local_hours = {h.astimezone(ZoneInfo(tz)).hour for h, *_ in want}
        distinct = {h for h, *_ in want}
        if tz == "America/New_York" and day == date(2026, 11, 1):  # 25 hours: 01:00 twice, apart
            assert len(distinct) == 25 > len(local_hours)
        if tz == "America/New_York" and day == date(2026, 3, 8):  # 23 hours: no 02:00
            assert len(distinct) == 23
            assert 2 not in local_hours


def day_of_calls(
    first: int, day: date, trunk: str, attempts: int, answered: int
) -> list[dict[str, Any]]:
    """`attempts` calls of one trunk spread over the day, the first `answered` of them answered."""
    rng = random.Random(first)
    out = []
    for k in range(attempts):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=60 * k + 7)
        ok = k < answered
        status = 200 if ok else 486
        answered_at = iso(at + timedelta(seconds=3)) if ok else "1970-01-01T00:00:00.000Z"
        out.append(
            record(
                first + k, at, rng, answered=ok, sip_status=status, answered_at=answered_at,
                duration=30 if ok else 0, terminated_at=iso(at + timedelta(seconds=40)),
                trunk=trunk, direction="outbound", call_sid=f"asr-{first + k}",
            )
        )  # fmt: skip
    return out


def z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    return (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))


def test_asr_drop_flags_a_collapse_and_not_a_small_day_or_dip(tmp_path: Path) -> None:
    check_day = date(2026, 11, 17)
    history = [check_day - timedelta(days=k) for k in range(7, 0, -1)]
    # trunk: (attempts, answered) on each history day, then on the checked day
    plan = {
        "collapse": ((60, 36), (80, 16)),  # 60% -> 20% on 80 calls: flagged
        "few-calls": ((60, 36), (20, 0)),  # 0% but 20 attempts: too few to judge
        "small-dip": ((60, 36), (100, 52)),  # 60% -> 52%: under 10 points
        "new-trunk": ((0, 0), (100, 10)),  # no history at all
    }
    records: list[dict[str, Any]] = []
    for trunk, ((h_n, h_x), (d_n, d_x)) in plan.items():
        for day in history:
            records += day_of_calls(len(records), day, trunk, h_n, h_x)
        records += day_of_calls(len(records), check_day, trunk, d_n, d_x)
    ws, we = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    n = normalize_dicts(records, synced_at=we, scope_sid="sp", window_start=ws, window_end=we)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        load_window(wh, n.calls, n.raw, n.quarantine, window_start=ws, window_end=we)
        for day in [*history, check_day]:
            a, b = day_bounds(day, "UTC")
            wh.rebuild_model("trunk_kpis_daily", day=day, tz="UTC", window_start=a, window_end=b)
        a, b = day_bounds(check_day, "UTC")
        outcome = wh.check("asr_drop", start=a, end=b, day=check_day, tz="UTC")
        # brute force: the rule over the plan's own counts
        flagged = [
            t
            for t, ((h_n, h_x), (d_n, d_x)) in plan.items()
            if d_n >= 50
            and 7 * h_n >= 200
            and d_x / d_n <= h_x / h_n - 0.10
            and z_test(d_x, d_n, 7 * h_x, 7 * h_n) <= -3
        ]
        assert flagged == ["collapse"]
        assert outcome.violations == 1
        (line,) = outcome.sample
        z = z_test(16, 80, 7 * 36, 7 * 60)
        assert line == (
            f"acct/outbound/collapse: ASR 0.200 of 80 attempts vs 0.600 of 420 in the 7 days "
            f"before (z {z:.1f})"
        )
        # the first history day has no history of its own: passes, and says why
        first = history[0]
        a, b = day_bounds(first, "UTC")
        quiet = wh.check("asr_drop", start=a, end=b, day=first, tz="UTC")
        assert quiet.passed
        assert quiet.sample[0].startswith("too little history")
        # the day before the check (6 days of history behind it): compared, nothing dropped
        last = history[-1]
        a, b = day_bounds(last, "UTC")
        steady = wh.check("asr_drop", start=a, end=b, day=last, tz="UTC")
        assert steady.passed
        assert steady.sample == ["3 groups compared with their 7 days before: none dropped"]
