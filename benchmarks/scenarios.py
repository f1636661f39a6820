"""The measured scenarios. Each runs in a fresh process (`python -m benchmarks.scenarios NAME
JSON-ARGS`) so its peak RSS is its own, and prints one `RESULT {json}` line.

- floor: fetch every page and parse its JSON (json.loads, the client's parser), nothing else;
- sync: pipelines.sync.load_stream, the code the `calls` asset runs, outside Dagster;
- dagster: the `calls` asset materialized for one partition (checks included);
- naive: a pandas DataFrame per page and `INSERT ... ON CONFLICT` into a table with a PRIMARY KEY;
- build: a warehouse file holding N synthetic calls before the benchmark day (DuckDB SQL);
- kpis: the benchmark day's trunk_kpis_daily and calls_hourly rebuilt on that file;
- ratelimit: the simulator's bucket compressed in time, the client paging a day against it.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks import pages
from warehouse.tables import CALL_COLUMN_NAMES

API_KEY = "bench-key"


def _window() -> Any:
    from pipelines.jambonz.streams import Window

    return Window(pages.DAY_START, pages.DAY_START + timedelta(days=1))


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM belongs to the process image, so it starts afresh
    at exec; ru_maxrss does not (it keeps the parent's peak at fork: a harness that had just
    rendered a big day's pages made every child look that big)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": _peak_rss_mb(), "cpu_s": ru.ru_utime + ru.ru_stime}


def floor(url: str, sid: str, concurrency: int = 1) -> dict[str, Any]:
    path = f"/v1/Accounts/{sid}/RecentCalls"
    parse_s = 0.0
    lock = threading.Lock()
    with httpx.Client(base_url=url, timeout=30.0) as http:

        def get(n: int) -> int:
            nonlocal parse_s
            body = http.get(path, params={"page": str(n), "count": "500"}).content
            t = time.perf_counter()
            doc = json.loads(body)
            spent = time.perf_counter() - t
            with lock:
                parse_s += spent
            return len(doc["data"]) if n > 1 else int(doc["total"])

        t0 = time.perf_counter()
        total = get(1)
        rows = min(total, 500)
        n_pages = -(-total // 500)
        if concurrency == 1:
            rows += sum(get(n) for n in range(2, n_pages + 1))
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                rows += sum(pool.map(get, range(2, n_pages + 1)))
        seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "seconds": seconds,
        "phases": {"fetch": seconds - parse_s, "parse": parse_s},
        **_usage(),
    }


def sync(url: str, sid: str, db: str, concurrency: int = 1) -> dict[str, Any]:
    from pipelines.jambonz.pager import JambonzClient
    from pipelines.jambonz.streams import Scope
    from pipelines.sync import load_stream
    from warehouse.database import Warehouse

    scope, window = Scope.account(sid), _window()
    t0 = time.perf_counter()  # opening and closing the file (its checkpoint) count too
    with (
        JambonzClient(url, API_KEY, fallback_rate=None, concurrency=concurrency) as client,
        Warehouse(db) as wh,
    ):
        stream = client.stream_window(scope, window)
        result = load_stream(stream, lambda: wh, scope, window, synced_at=datetime.now(UTC))
    seconds = time.perf_counter() - t0
    return {
        "rows": result.in_window,
        "seconds": seconds,
        "phases": result.phases,
        "inserted": result.load.inserted,
        "unchanged": result.load.unchanged,
        **_usage(),
    }


def dagster(url: str, sid: str, db: str, concurrency: int = 1) -> dict[str, Any]:
    t_import = time.perf_counter()
    import dagster as dg

    from pipelines.calls import build_calls_asset
    from pipelines.partitions import daily_partitions
    from pipelines.resources import JambonzResource, WarehouseResource
    from pipelines.settings import load_settings

    imported = time.perf_counter() - t_import
    settings = load_settings(
        {
            "JAMBONZ_BASE_URL": url,
            "JAMBONZ_ACCOUNT_SID": sid,
            "WAREHOUSE_PATH": db,
            "PARTITIONS_START_DATE": (pages.DAY_START - timedelta(days=3)).date().isoformat(),
        },
        today=(pages.DAY_START + timedelta(days=5)).date(),
    )
    asset = build_calls_asset(settings, daily_partitions(settings))
    resources = {
        "jambonz": JambonzResource(
            base_url=url,
            api_key=API_KEY,
            account_sid=sid,
            concurrency=concurrency,
            pace_without_headers=False,
        ),
        "warehouse": WarehouseResource(path=db),
    }
    t0 = time.perf_counter()
    result = dg.materialize(
        [asset],
        partition_key=pages.DAY_START.date().isoformat(),
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    seconds = time.perf_counter() - t0
    meta = result.asset_materializations_for_node("calls")[0].metadata
    body = float(str(meta["elapsed_s"].value))
    return {
        "rows": int(str(meta["api_in_window"].value)),
        "seconds": seconds,
        "phases": {"import": imported, "asset body": body, "dagster": seconds - body},
        **_usage(),
    }


_NAIVE_DDL = """
CREATE TABLE IF NOT EXISTS calls_naive (
    call_key VARCHAR PRIMARY KEY, call_sid VARCHAR, account_sid VARCHAR,
    service_provider_sid VARCHAR, application_sid VARCHAR, direction VARCHAR,
    from_number VARCHAR, to_number VARCHAR, answered BOOLEAN, sip_status INTEGER,
    duration INTEGER, attempted_at TIMESTAMPTZ, answered_at TIMESTAMPTZ, terminated_at TIMESTAMPTZ,
    termination_reason VARCHAR, host VARCHAR, remote_host VARCHAR, trunk VARCHAR,
    sip_callid VARCHAR, sip_parent_callid VARCHAR, trace_id VARCHAR, recording_url VARCHAR
)"""
# the columns of the 21 keys every record carries
_NAIVE_COLS = [c for c in CALL_COLUMN_NAMES[:22] if c not in ("extra", "synced_at")]


def naive(
    url: str, sid: str, db: str, concurrency: int = 1, max_pages: int = 100
) -> dict[str, Any]:
    """What a first attempt looks like: a DataFrame per page, upserted by DuckDB's ON CONFLICT.

    Sequential, and capped at `max_pages` pages (its rate is what is compared; the cap keeps the
    run short and, as the PRIMARY KEY index only grows, flatters it).
    """
    import duckdb
    import pandas as pd

    con = duckdb.connect(db)
    con.execute(_NAIVE_DDL)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _NAIVE_COLS[1:])
    insert = (
        f"INSERT INTO calls_naive SELECT {', '.join(_NAIVE_COLS)} FROM df "
        f"ON CONFLICT (call_key) DO UPDATE SET {updates}"
    )
    path = f"/v1/Accounts/{sid}/RecentCalls"
    rows = 0
    phases = {"fetch": 0.0, "parse": 0.0, "normalize": 0.0, "load": 0.0}
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30.0) as http:
        n, n_pages = 1, 1
        while n <= n_pages:
            t = time.perf_counter()
            body = http.get(path, params={"page": str(n), "count": "500"}).content
            t1 = time.perf_counter()
            doc = json.loads(body)
            n_pages = min(max_pages, -(-int(doc["total"]) // 500))
            t2 = time.perf_counter()
            df = pd.DataFrame(doc["data"]).rename(
                columns={"from": "from_number", "to": "to_number"}
            )
            df["call_key"] = df["call_sid"].fillna(df["sip_callid"])
            for col in ("attempted_at", "answered_at", "terminated_at"):
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
            t3 = time.perf_counter()
            con.execute(insert)
            t4 = time.perf_counter()
            phases["fetch"] += t1 - t
            phases["parse"] += t2 - t1
            phases["normalize"] += t3 - t2
            phases["load"] += t4 - t3
            rows += len(df)
            n += 1
    seconds = time.perf_counter() - t0
    con.close()
    return {"rows": rows, "seconds": seconds, "phases": phases, **_usage()}


def build(db: str, rows: int, start: int = 0) -> dict[str, Any]:
    """Calls i in [start, rows) of a synthetic history, 100k a day going back from the day."""
    from warehouse.database import Warehouse

    t0 = time.perf_counter()
    with Warehouse(db) as wh:
        con = wh.con
        con.execute("SET preserve_insertion_order = true")
        # the benchmark day's own rows are removed first: each tier loads it as new
        con.execute("DELETE FROM calls WHERE attempted_at >= $d", {"d": pages.DAY_START})
        con.execute("DELETE FROM calls_raw WHERE attempted_at >= $d", {"d": pages.DAY_START})
        params = {"start": start, "stop": rows, "day": pages.DAY_START}
        con.execute(
            """
            INSERT INTO calls BY NAME
            SELECT
                'hist-' || i AS call_key, 'hist-' || i AS call_sid,
                '173c3dbf-acbb-4e31-9668-a4f3445cb971' AS account_sid,
                '43a6715f-583b-41e0-a086-b4f8cc677771' AS service_provider_sid,
                NULL AS application_sid,
                CASE WHEN i % 2 = 0 THEN 'inbound' ELSE 'outbound' END AS direction,
                '1415' || (i % 10000000) AS from_number, '1617' || (i % 9999991) AS to_number,
                i % 4 <> 0 AS answered, CASE WHEN i % 4 <> 0 THEN 200 ELSE 486 END AS sip_status,
                CASE WHEN i % 4 <> 0 THEN 60 + i % 600 ELSE 0 END AS duration,
                $day - to_microseconds(864000 * (i + 1)) AS attempted_at,
                CASE WHEN i % 4 <> 0 THEN $day - to_microseconds(864000 * (i + 1) - 5000000)
                END AS answered_at,
                $day - to_microseconds(864000 * (i + 1) - 65000000 - (i % 600) * 1000000)
                    AS terminated_at,
                'caller hungup' AS termination_reason, '10.0.0.11' AS host,
                '3.1.2.' || (i % 250) AS remote_host, 'twilio' AS trunk,
                'sip-' || i || '@10.0.0.1' AS sip_callid, NULL AS sip_parent_callid,
                '00000000000000000000000000000000' AS trace_id, NULL AS recording_url,
                NULL AS extra, $day - INTERVAL 1 DAY AS synced_at
            FROM range($start, $stop) AS t(i)
            """,
            params,
        )
        con.execute(
            """
            INSERT INTO calls_raw
            SELECT 'hist-' || i, $day - to_microseconds(864000 * (i + 1)),
                '173c3dbf-acbb-4e31-9668-a4f3445cb971', '{"h":' || i || '}',
                $day - INTERVAL 1 DAY
            FROM range($start, $stop) AS t(i)
            """,
            params,
        )
        con.execute("CHECKPOINT")
        (count,) = con.execute("SELECT count(*) FROM calls").fetchone() or (0,)
    return {"rows": count, "seconds": time.perf_counter() - t0, **_usage()}


def kpis(db: str) -> dict[str, Any]:
    """The benchmark day's rebuild of trunk_kpis_daily and calls_hourly (each its own
    transaction), on whatever history the file holds: the calls still running at the day's
    start are found by their terminated_at, not by scanning the history."""
    from warehouse.database import Warehouse

    start = pages.DAY_START
    bounds = {"day": start.date(), "tz": "UTC", "window_start": start}
    rows = 0
    with Warehouse(db) as wh:
        t0 = time.perf_counter()
        for name in ("trunk_kpis_daily", "calls_hourly"):
            rows += wh.rebuild_model(name, **bounds, window_end=start + timedelta(days=1))
        seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": seconds, **_usage()}


def ratelimit(limit: int, window_s: float, calls: int, reserve: float = 0.2) -> dict[str, Any]:
    """Page a day against a bucket of `limit` per `window_s`; every request is recorded."""
    from pipelines.jambonz import simulator as simmod
    from pipelines.jambonz.pager import JambonzClient
    from pipelines.jambonz.streams import Scope

    sent: list[tuple[float, int, int | None]] = []  # (time, status, RateLimit-Remaining)

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            t = time.monotonic()
            response = super().handle_request(request)
            remaining = response.headers.get("ratelimit-remaining")
            sent.append((t, response.status_code, int(remaining) if remaining else None))
            return response

    now = pages.DAY_START + timedelta(days=2)
    with simmod.Simulator(seed=3, calls_per_day=calls, rate_limit=None, now=now) as sim:
        window = _window()
        sim.calls(simmod.ACCOUNT_SID, window.start, window.end)  # generate before the clock runs
        sim.set_rate_limit(limit, window_s)
        with JambonzClient(
            sim.base_url, simmod.ACCOUNT_KEY, reserve=reserve, page_size=100, _transport=Recording()
        ) as client:
            t0 = time.monotonic()
            stream = client.stream_window(Scope.account(simmod.ACCOUNT_SID), window)
            for _ in stream:  # the records pass through; the result counts them
                pass
            result = stream.result
            assert result is not None
            seconds = time.monotonic() - t0
        n429 = sim.count_429
    start = sent[0][0]
    span = 2 * window_s
    in_span = sum(1 for t, _, _ in sent if t < start + span)
    allowed_rate = limit * (1 - reserve) / window_s
    floor_remaining = min((r for _, _, r in sent if r is not None), default=None)
    return {
        "rows": result.in_window,
        "requests": len(sent),
        "seconds": seconds,
        "in_two_windows": in_span,
        "achieved_rate": in_span / span,
        "allowed_rate": allowed_rate,
        "share": in_span / span / allowed_rate,
        "n429": n429,
        "min_remaining": floor_remaining,
        "reserve_kept": floor_remaining is not None
        and floor_remaining >= math.ceil(limit * reserve),
        **_usage(),
    }


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "floor": floor,
    "sync": sync,
    "dagster": dagster,
    "naive": naive,
    "build": build,
    "kpis": kpis,
    "ratelimit": ratelimit,
}


def main(argv: list[str]) -> int:
    name, args = argv[0], json.loads(argv[1])
    result = SCENARIOS[name](**args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
