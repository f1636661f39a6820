"""What the fraud checks cost a day's run, by the day's size: reading its numbers, and the SQL.

    python -m benchmarks.fraud [--calls 2000,20000,100000] [--days 8] [--out FILE]

For each size, the built-in simulator's calls of `--days` days (UTC) are normalized and loaded
into a fresh DuckDB file (no HTTP: the sync's cost is benchmarks/backfill.py's), then
`pipelines.fraud.find` runs over the last day, its history the days before, with
NUMBERS_DEFAULT_REGION=US and US at home. Reported: the day's distinct numbers, the time reading
them (libphonenumber, once each), the time of the four checks' queries and rules, and both per
100k calls, so the sizes compare as ratios.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks import emit
from pipelines import fraud
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.jambonz.streams import RECENT_CALLS, from_dicts
from pipelines.normalize import normalize
from warehouse.database import Warehouse

LAST = date(2026, 12, 7)


def _load(wh: Warehouse, sim: Simulator, days: int) -> int:
    loaded = 0
    for k in range(days):
        day = LAST - timedelta(days=days - 1 - k)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        records = sim.calls(simmod.ACCOUNT_SID, start, end)
        n = normalize(
            from_dicts(RECENT_CALLS, records),
            synced_at=end,
            scope_sid=simmod.ACCOUNT_SID,
            window_start=start,
            window_end=end,
        )
        with wh.window_load(window_start=start, window_end=end) as load:
            load.add(n.calls, n.raw, n.quarantine)
        loaded += n.calls.num_rows
    return loaded


def measure(calls: int, days: int, root: Path) -> dict[str, float]:
    rules = fraud.Rules(tz="UTC", region="US", home=frozenset({"US"}))
    with Warehouse(root / f"fraud-{calls}.duckdb") as wh:
        _load(
            wh,
            Simulator(seed=7, calls_per_day=calls, now=datetime(2026, 12, 8, 2, tzinfo=UTC)),
            days,
        )
        ((day_calls,),) = wh.con.execute(
            "SELECT count(*) FROM calls WHERE CAST(attempted_at AS DATE) = $d", {"d": LAST}
        ).fetchall()
        started = time.perf_counter()
        numbers = [
            r["number"]
            for r in wh.rows(
                "day_numbers",
                {
                    "tz": "UTC",
                    "day": LAST,
                    "window_start": datetime(2026, 12, 7, tzinfo=UTC),
                    "window_end": datetime(2026, 12, 8, tzinfo=UTC),
                },
                folder="fraud",
            )
        ]
        fraud.numbers_table(numbers, "US")
        reading = time.perf_counter() - started
        started = time.perf_counter()
        found = fraud.find(wh, LAST, rules)
        total = time.perf_counter() - started
    return {
        "calls": day_calls,
        "numbers": len(numbers),
        "reading_s": reading,
        "checks_s": max(total - reading, 0.0),
        "total_s": total,
        "flagged": sum(len(f.flagged) for f in found.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="2000,20000,100000", help="calls a day, by commas")
    parser.add_argument("--days", type=int, default=8, help="days loaded (the last is checked)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.calls.split(",")]
    lines = [
        f"fraud checks over one day ({args.days - 1} days of history), "
        f"{platform.python_implementation()} {platform.python_version()}",
        "",
        "| calls in the day | distinct numbers | reading numbers s | checks s | total s "
        "| total s per 100k calls | vs the smallest |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-fraud-") as tmp:
        base = None
        for calls in sizes:
            m = measure(calls, args.days, Path(tmp))
            per = m["total_s"] / m["calls"] * 100_000
            base = base or per
            lines.append(
                f"| {m['calls']:,.0f} | {m['numbers']:,.0f} | {m['reading_s']:.2f} "
                f"| {m['checks_s']:.2f} | {m['total_s']:.2f} | {per:.2f} | {per / base:.2f}x |"
            )
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
