"""The DuckLake lane as days accumulate: 60 daily loads with their look-back re-syncs.

    python -m benchmarks.lake [--days 60] [--calls 10000] [--out FILE]

A PostgreSQL of its own (benchmarks/postgres.py) holds the catalog, a temp folder the Parquet files,
the built-in simulator serves the calls. Each simulated day does what the daily schedule and the
maintenance schedule do on a real one:
1. sync the day (pipelines.sync.load_stream: client -> normalize -> one transaction), timed: the
   day's upsert;
2. re-sync the SYNC_LOOKBACK_DAYS (2) days before it (unchanged calls: read, compared, kept);
3. rebuild the day's four models;
4. run the lake maintenance (pipelines/maintenance.py's steps) with no retention: the bench
   compresses days into seconds, so "older than 7 days" would never come; 0 stands for "the
   days before today".

It prints, per tenth of the days, the upsert's time against day 1's and the files: live data
files in the catalog and Parquet files on disk, before and after the maintenance. Targets
(issue 13): the files stay bounded, and day 60's upsert is within 1.5x of day 1's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from benchmarks.postgres import start as start_postgres
from pipelines.fraud import Rules
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.simulator import Simulator
from pipelines.jambonz.streams import Scope, Window
from pipelines.models import model_inputs
from pipelines.partitions import day_window
from pipelines.sync import SyncResult, load_stream
from warehouse.database import Warehouse
from warehouse.lake import parse
from warehouse.sql_files import model_names

LOOKBACK = 2


def run(days: int, calls: int) -> list[dict[str, float]]:
    first = datetime(2026, 6, 1, tzinfo=UTC).date()
    now = datetime.combine(first + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    server = start_postgres()
    data = Path(tempfile.mkdtemp(prefix="jw-lake-bench-"))
    rows: list[dict[str, float]] = []
    try:
        server.psql("CREATE DATABASE bench")
        os.environ.update(server.env())  # the catalog's password, as libpq reads it
        lake = parse(f"ducklake:postgres:{server.conninfo('bench')}", str(data) + "/")
        with (
            # no rate limit: the bench measures the lake, not the pacing (jambonz 600/5 min)
            Simulator(seed=3, calls_per_day=calls, now=now, rate_limit=None) as sim,
            JambonzClient(sim.base_url, simmod.ACCOUNT_KEY, fallback_rate=None) as client,
            Warehouse(lake) as wh,
        ):
            scope = Scope.account(simmod.ACCOUNT_SID)

            def sync(window: Window, synced: datetime) -> SyncResult:
                stream = client.stream_window(scope, window)
                return load_stream(stream, lambda: wh, scope, window, synced_at=synced)

            for n in range(days):
                day = first + timedelta(days=n)
                w = day_window(day, "UTC")
                # the daily schedule's tick: the day ended and settled (jambonz keeps 30 days)
                sim.set_clock(w.end + timedelta(hours=1))
                t0 = time.perf_counter()
                synced = w.end + timedelta(hours=1)
                result = sync(Window(w.start, w.end), synced)
                upsert = time.perf_counter() - t0
                t1 = time.perf_counter()
                for back in range(1, LOOKBACK + 1):
                    if n - back >= 0:
                        b = day_window(day - timedelta(days=back), "UTC")
                        sync(Window(b.start, b.end), synced)
                lookback = time.perf_counter() - t1
                t_models = time.perf_counter()
                for model in model_names():
                    wh.rebuild_model(
                        model,
                        day=day,
                        tz="UTC",
                        window_start=w.start,
                        window_end=w.end,
                        tables=model_inputs(model, wh, day, Rules(tz="UTC"))[0],
                    )
                t2 = time.perf_counter()
                counts = wh.maintain(snapshot_retention=timedelta(0), file_grace=timedelta(0))
                rows.append(
                    row := {
                        "day": n + 1,
                        "calls": result.in_window,
                        "upsert_s": upsert,
                        "lookback_s": lookback,
                        "models_s": t2 - t_models,
                        "maintain_s": time.perf_counter() - t2,
                        "live_files_before": counts["live_data_files_before"],
                        "live_files": counts["live_data_files"],
                        "snapshots_before": counts["snapshots_before"],
                        "on_disk": len(list(data.rglob("*.parquet"))),
                    }
                )
                print(" ".join(f"{k}={v:.2f}" for k, v in row.items()), flush=True)  # progress
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return rows


def report(rows: list[dict[str, float]]) -> str:
    day1 = statistics.median(r["upsert_s"] for r in rows[:3])
    last = statistics.median(r["upsert_s"] for r in rows[-3:])
    step = max(1, len(rows) // 10)
    shown = [r for r in rows if (r["day"] - 1) % step == 0 or r is rows[-1]]
    out = [
        f"DuckLake lane, {len(rows)} days of {rows[0]['calls']:,.0f} calls, each day synced, "
        f"its {LOOKBACK} look-back days re-synced, its models rebuilt, the lake maintained.",
        "",
        "| day | upsert s | vs days 1-3 | look-back s | models s | maintenance s | live files "
        "before -> after | snapshots before | Parquet files on disk |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in shown:
        out.append(
            f"| {r['day']:.0f} | {r['upsert_s']:.2f} | {r['upsert_s'] / day1:.2f}x "
            f"| {r['lookback_s']:.2f} | {r.get('models_s', 0):.2f} | {r['maintain_s']:.2f} "
            f"| {r['live_files_before']:.0f} -> {r['live_files']:.0f} "
            f"| {r['snapshots_before']:.0f} | {r['on_disk']:.0f} |"
        )
    most = max(r["on_disk"] for r in rows)
    out += [
        "",
        f"- upsert, median of the last 3 days against the first 3: {last:.2f} s / {day1:.2f} s "
        f"= **{last / day1:.2f}x** (target <= 1.5x): {'met' if last / day1 <= 1.5 else 'MISSED'}",
        f"- Parquet files on disk: at most {most:.0f} over {len(rows)} days, "
        f"{rows[-1]['on_disk']:.0f} at the end; live data files after maintenance "
        f"{min(r['live_files'] for r in rows):.0f}..{max(r['live_files'] for r in rows):.0f}",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lake")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--calls", type=int, default=10_000, help="calls a day")
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the table")
    args = parser.parse_args()
    # a stopped bench (SIGTERM) still stops its PostgreSQL and removes its folders
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    text = report(run(args.days, args.calls))
    print(text)
    if args.out:
        args.out.write_text(
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (`python -m benchmarks.lake`, DuckDB "
            f"{duckdb.__version__}, PostgreSQL catalog, tables partitioned by month).\n\n"
            + text
            + "\n"
        )


if __name__ == "__main__":
    main()
