"""Alerts, call costs and destinations in the warehouse, in both lanes, against brute force.

- `alerts` holds every alert once with its values (tests/oracle.py's rows), a re-load changes
  nothing, and `alerts_daily` equals a count in Python over local days (DST days included).
- `destinations_daily` equals a Python computation whose countries come from a literal table
  (what libphonenumber says of each number, written down), not from pipelines/numbers.py.
- A warehouse that held calls with their costs in `extra` (before migration 011) gets the
  columns filled and `extra` emptied of them on upgrade, and a re-sync finds those calls
  unchanged.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from pipelines.jambonz.streams import ALERTS
from pipelines.models import far_end_countries
from pipelines.partitions import day_window
from tests import oracle
from tests.helpers import load_window, normalize_dicts
from tests.integration.test_models import iso
from warehouse import database
from warehouse.database import Warehouse
from warehouse.lake import Lake

# the New York days around both DST changes of 2026, and one plain day
DAYS = [date(2026, 3, 8), date(2026, 11, 1), date(2026, 11, 21)]
ACCOUNTS = ["acct-a", "acct-b", "undefined"]
TYPES = ["account-call-limit", "service-provider-call-limit", "webhook-failure", "tts-failure"]
WS, WE = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
SYNCED = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture(params=["file", pytest.param("lake", marks=pytest.mark.lake)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | Lake:
    """Both lanes: a DuckDB file, a DuckLake with its catalog in PostgreSQL."""
    if request.param == "lake":
        lake: Lake = request.getfixturevalue("lake")
        return lake
    return tmp_path / "wh.duckdb"


@pytest.fixture
def wh(target: Path | Lake) -> Iterator[Warehouse]:
    with Warehouse(target, lock_timeout_s=5) as w:
        yield w


def alert_records(seed: int) -> list[dict[str, Any]]:
    """Alerts in the server's shape over DAYS and the hours around their local midnights: some
    sharing a millisecond, some apart below it, service-provider ones with "undefined"."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for day in DAYS:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=6)
        for _ in range(120):
            ns = rng.randrange(36 * 3600) * 10**9 + rng.choice([0, 10**6 * rng.randrange(1000)])
            ns += rng.choice([0, 0, rng.randrange(10**6)])  # below the millisecond
            out.append(alert(start, ns, rng))
        twin = out[-1]
        out.append({**twin, "alert_type": "webhook-failure", "vendor": None})  # same time
        out.append({**twin, "time": twin["time"][:-1].ljust(29, "0")[:-1] + "7Z"})  # 7 ns on
    return out


def alert(start: datetime, ns: int, rng: random.Random) -> dict[str, Any]:
    at = start + timedelta(microseconds=ns // 1000)
    frac = f"{at.microsecond * 1000 + ns % 1000:09d}".rstrip("0")
    account = rng.choice(ACCOUNTS)
    kind = "service-provider-call-limit" if account == "undefined" else rng.choice(TYPES[::2])
    return {
        "time": at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z",
        "account_sid": account,
        "alert_type": kind,
        "detail": rng.choice([None, "timeout after 5000 ms"]),
        "message": f"{kind} happened",
        "service_provider_sid": rng.choice(["sp", "sp", "undefined"]),
        "vendor": "google" if kind == "tts-failure" else None,
    }


def load_alerts(wh: Warehouse, records: list[dict[str, Any]]) -> tuple[int, int, int]:
    n = normalize_dicts(
        records, ALERTS, synced_at=SYNCED, scope_sid="sp", window_start=WS, window_end=WE
    )
    r = load_window(
        wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=WE, table="alerts"
    )
    return r.inserted, r.updated, r.unchanged


def test_every_alert_once_with_its_values_and_alerts_daily_equals_brute_force(
    wh: Warehouse,
) -> None:
    records = alert_records(seed=3)
    want = oracle.expected_alerts(records)
    assert load_alerts(wh, records) == (len(want.rows), 0, 0)
    got = {}
    cur = wh.con.execute("SELECT * EXCLUDE (synced_at) FROM alerts")
    names = [d[0] for d in cur.description or []]
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        row["extra"] = json.loads(row["extra"]) if row["extra"] else None
        got[row["alert_key"]] = row
    assert got == want.rows
    assert load_alerts(wh, list(reversed(records))) == (0, 0, len(want.rows))

    for tz in ("UTC", "America/New_York"):
        for day in DAYS:
            window = day_window(day, tz)
            wh.rebuild_model(
                "alerts_daily", day=day, tz=tz, window_start=window.start, window_end=window.end
            )
            rows = wh.con.execute(
                "SELECT account_sid, alert_type, alerts FROM alerts_daily WHERE day = $d",
                {"d": day},
            ).fetchall()
            expected = Counter(
                (r["account_sid"], r["alert_type"])
                for r in want.rows.values()
                if r["alerted_at"].astimezone(ZoneInfo(tz)).date() == day
            )
            assert {(a, t): n for a, t, n in rows} == dict(expected), (tz, day)
            assert sum(expected.values()) > 0
            assert any(a is None for a, _ in expected)  # service-provider alerts: NULL


# What libphonenumber says of each far end, written down (tests/unit/test_numbers.py holds
# the same facts one by one): with no default region, and with NUMBERS_DEFAULT_REGION=US
COUNTRIES: dict[str, tuple[str | None, str | None]] = {
    "+12125550123": ("US", "US"),
    "12125550123": ("US", "US"),
    "2125550123": (None, "US"),
    "8628964595": ("CN", "US"),
    "+18765230123": ("JM", "JM"),
    "447400123456": ("GB", "GB"),
    "+8823421234": ("001", "001"),
    "sip:+447400123456@pbx.example.com": ("GB", "GB"),
    "alice": (None, None),
    "": (None, None),
    "+447700900123": (None, None),
}


def call_records(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(1500):
        day = rng.choice(DAYS)
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(-6 * 3600, 30 * 3600)
        )
        answered = rng.random() < 0.6
        duration = rng.choice([rng.randrange(0, 6), rng.randrange(6, 600)]) if answered else 0
        direction = rng.choice(["inbound", "outbound", "outbound"])
        far, near = rng.choice(list(COUNTRIES)), "15085550100"
        record = {
            "attempted_at": iso(at),
            "account_sid": rng.choice(ACCOUNTS[:2]),
            "answered": answered,
            "answered_at": iso(at + timedelta(seconds=3)) if answered else "1970-01-01T00:00:00Z",
            "application_sid": None,
            "call_sid": f"call-{i}",
            "direction": direction,
            "duration": duration,
            "from": far if direction == "inbound" else near,
            "host": "10.0.0.1",
            "recording_url": None,
            "remote_host": "3.4.5.6",
            "service_provider_sid": "sp",
            "sip_callid": f"sip-{i}",
            "sip_parent_callid": None,
            "sip_status": 200 if answered else 486,
            "terminated_at": iso(at + timedelta(seconds=3 + duration)),
            "termination_reason": "caller hungup",
            "to": near if direction == "inbound" else far,
            "trace_id": "0" * 32,
            "trunk": rng.choice(["carrier-a", "carrier-b"]),
        }
        if direction == "outbound" and record["trunk"] == "carrier-a":
            billed = -(-duration // 6) * 6
            record.update(cost=round(billed * 0.01 / 60, 6), rate=0.01, billed_seconds=billed)
        out.append(record)
    return out


@pytest.mark.parametrize("region", [None, "US"])
def test_destinations_daily_equals_brute_force(wh: Warehouse, region: str | None) -> None:
    records = call_records(seed=11)
    n = normalize_dicts(records, synced_at=SYNCED, scope_sid="sp", window_start=WS, window_end=WE)
    load_window(wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=WE)
    tz = "America/New_York"
    for day in DAYS:
        window = day_window(day, tz)
        tables = {"far_end_countries": far_end_countries(wh, window, region)}
        for _ in range(2):  # a rebuild changes nothing
            wh.rebuild_model(
                "destinations_daily",
                day=day,
                tz=tz,
                window_start=window.start,
                window_end=window.end,
                tables=tables,
            )
        got = wh.con.execute(
            "SELECT * EXCLUDE (day, complete) FROM destinations_daily WHERE day = $d", {"d": day}
        ).fetchall()
        want = destinations(records, day, tz, 0 if region is None else 1)
        assert {g[:4]: g[4:] for g in got}.keys() == want.keys()
        for g in got:
            for a, b in zip(g[4:], want[g[:4]], strict=True):
                assert a == (pytest.approx(b, rel=1e-12) if isinstance(b, float) else b), g[:4]
        assert any(k[3] is None for k in want)  # calls with no country: their own group
        assert any(k[3] == "001" for k in want)


def destinations(
    records: list[dict[str, Any]], day: date, tz: str, column: int
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        at = datetime.fromisoformat(r["attempted_at"].replace("Z", "+00:00"))
        if at.astimezone(ZoneInfo(tz)).date() != day:
            continue
        far = r["to"] if r["direction"] == "outbound" else r["from"]
        country = COUNTRIES[far][column]
        groups[(r["account_sid"], r["direction"], r["trunk"], country)].append(r)
    out = {}
    for key, calls in groups.items():
        ans = [c for c in calls if c["answered"]]
        costs = [c["cost"] for c in calls if "cost" in c]
        talk = sum(c["duration"] for c in ans)
        out[key] = (
            len(calls),
            len(ans),
            len(ans) / len(calls),
            talk,
            talk / len(ans) if ans else None,
            sum(1 for c in ans if c["duration"] < 6),
            math.fsum(costs) if costs else None,
        )
    return out


def test_upgrading_a_warehouse_with_costs_in_extra_fills_the_columns(
    target: Path | Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warehouse as the previous release wrote it (migrations up to 009; costs were unknown
    keys, in `extra`), opened by this release."""
    records = call_records(seed=5)
    n = normalize_dicts(records, synced_at=SYNCED, scope_sid="sp", window_start=WS, window_end=WE)
    costed = [r for r in n.calls.to_pylist() if r["cost"] is not None]
    assert costed
    every = database.migrations

    def before_011(*, lake: bool = False) -> list[tuple[int, str, str]]:
        return [m for m in every(lake=lake) if m[0] < 10]

    with monkeypatch.context() as m:
        m.setattr(database, "migrations", before_011)
        with Warehouse(target) as wh:
            assert "cost" not in [r[0] for r in wh.con.execute("DESCRIBE calls").fetchall()]
            wh.con.register("old", old_rows(n.calls))
            wh.con.register("raw", n.raw)
            wh.con.execute("INSERT INTO calls BY NAME SELECT * FROM old")
            wh.con.execute("INSERT INTO calls_raw BY NAME SELECT * FROM raw")
    with Warehouse(target) as wh:
        got = {
            k: (c, r, b, e)
            for k, c, r, b, e in wh.con.execute(
                "SELECT call_key, cost, rate, billed_seconds, CAST(extra AS VARCHAR) FROM calls"
            ).fetchall()
        }
        for row in n.calls.to_pylist():
            assert got[row["call_key"]] == (
                row["cost"],
                row["rate"],
                row["billed_seconds"],
                row["extra"],
            )
        again = load_window(wh, n.calls, n.raw, n.quarantine, window_start=WS, window_end=WE)
        assert (again.inserted, again.updated) == (0, 0)


def old_rows(calls: pa.Table) -> pa.Table:
    """`calls` rows as release 10 wrote them: no cost columns, their values in `extra`."""
    rows = []
    for row in calls.to_pylist():
        extra = json.loads(row["extra"]) if row["extra"] else {}
        for key in ("cost", "rate", "billed_seconds"):
            value = row.pop(key)
            if value is not None:
                extra[key] = value
        row["extra"] = json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else None
        rows.append(row)
    return pa.Table.from_pylist(rows)
