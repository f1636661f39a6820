"""A day of intra-day ticks, then the final run: what each tick costs, and what the day costs.

    python -m benchmarks.intraday [--calls 50000] [--every 30] [--out FILE]

The built-in simulator serves `--calls` calls a day and writes each call when it ends, as
jambonz does; its clock is set to each tick of the day (`--every` minutes apart) and the real
definitions run `intraday_sync` in-process, as the sensor's runs would (a run's own process
start, ~6 s, is in benchmarks/backfill.py's figures). Then the daily run of the day, an hour
after midnight, makes it final; a second, empty warehouse gets only that run, and both must hold
the same calls. The simulator's bucket is set so large that no request waits: the wall times
are the sync's own, and each tick's time at jambonz's pace (600 requests per 5 minutes less the
0.2 reserve: 1.6 a second) is its requests divided by 1.6.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from benchmarks import emit
from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.settings import load_settings

PACE = 600 * 0.8 / 300  # requests a second jambonz's default bucket gives us after the reserve
BUCKET_A_DAY = 600 * 24 * 60 / 5  # requests the bucket allows in a day, every client included


@dataclass
class Tick:
    at: datetime
    calls: int  # in the warehouse for the day after the tick
    requests: int
    inserted: int
    seconds: float


def _defs(sim: Simulator, path: Path, first: date) -> dg.Definitions:
    os.environ["JAMBONZ_API_KEY"] = simmod.ACCOUNT_KEY  # the resource's EnvVar
    env = {
        "JAMBONZ_BASE_URL": sim.base_url,
        "JAMBONZ_ACCOUNT_SID": simmod.ACCOUNT_SID,
        "WAREHOUSE_PATH": str(path),
        "PARTITIONS_START_DATE": first.isoformat(),
        "PARTITIONS_TIMEZONE": "UTC",
        "SYNC_RETRIES": "0",
    }
    return build_definitions(load_settings(env))


def _meta(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (mat,) = result.asset_materializations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _calls(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(k for (k,) in con.execute("SELECT call_key FROM calls").fetchall())


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, **kw: Any
) -> tuple[dg.ExecuteInProcessResult, float]:
    started = time.perf_counter()
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, **kw)
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per day")
    parser.add_argument("--every", type=int, default=30, help="minutes between ticks")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    day = datetime.now(UTC).date() - timedelta(days=3)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ticks: list[Tick] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-intraday-") as tmp,
        Simulator(seed=5, calls_per_day=args.calls, now=midnight, rate_limit=(10**7, 300.0)) as sim,
        dg.DagsterInstance.ephemeral() as instance,
    ):
        path, alone_path = Path(tmp) / "ticks.duckdb", Path(tmp) / "alone.duckdb"
        defs = _defs(sim, path, day)
        config = {"ops": {"calls_today": {"config": {"day": day.isoformat()}}}}
        for n in range(1, 24 * 60 // args.every):
            sim.set_clock(midnight + timedelta(minutes=n * args.every))
            result, seconds = _run(defs, instance, "intraday_sync", run_config=config)
            meta = _meta(result, "calls_today")
            ticks.append(
                Tick(
                    sim.now,
                    int(meta["dagster/row_count"]),
                    int(meta["requests"]),
                    int(meta["inserted"]),
                    seconds,
                )
            )
        sim.set_clock(midnight + timedelta(days=1, hours=1))
        final, final_s = _run(defs, instance, "daily_sync", partition_key=day.isoformat())
        alone, alone_s = _run(
            _defs(sim, alone_path, day), instance, "daily_sync", partition_key=day.isoformat()
        )
        same = _calls(path) == _calls(alone_path)
        final_meta, alone_meta = _meta(final, "calls"), _meta(alone, "calls")
    if not same:
        raise SystemExit("the final run after the ticks and a single run hold different calls")
    requests = sum(t.requests for t in ticks)
    worst = max(ticks, key=lambda t: t.requests)
    lines = [
        f"# A day of intra-day ticks every {args.every} min, then the final run",
        "",
        f"`python -m benchmarks.intraday --calls {args.calls} --every {args.every}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        f"`intraday_sync` in-process (calls_today: the day's window, then its four models) at "
        f"each tick of the simulator's clock, then `daily_sync` of the day at 01:00 "
        f"(load average at the end {os.getloadavg()[0]:.1f}).",
        "",
        "| tick (UTC) | calls so far | requests | inserted | wall s | s at jambonz's pace |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    shown = {0, len(ticks) // 4, len(ticks) // 2, 3 * len(ticks) // 4, len(ticks) - 1}
    for n, t in enumerate(ticks):
        if n in shown:
            lines.append(
                f"| {t.at:%H:%M} | {t.calls} | {t.requests} | {t.inserted} | {t.seconds:.2f} | "
                f"{t.requests / PACE:.0f} |"
            )
    lines += [
        f"| final run, 01:00 next day | {final_meta['dagster/row_count']} | "
        f"{final_meta['requests']} | {final_meta['inserted']} | {final_s:.2f} | "
        f"{int(final_meta['requests']) / PACE:.0f} |",
        f"| a single run instead, 01:00 | {alone_meta['dagster/row_count']} | "
        f"{alone_meta['requests']} | {alone_meta['inserted']} | {alone_s:.2f} | "
        f"{int(alone_meta['requests']) / PACE:.0f} |",
        "",
        f"{len(ticks)} ticks: {requests} requests, {requests / BUCKET_A_DAY:.1%} of the "
        f"{BUCKET_A_DAY:,.0f} a day jambonz's bucket allows all its clients; "
        f"{sum(t.seconds for t in ticks):.1f} s of syncing in all, the longest tick "
        f"{max(t.seconds for t in ticks):.2f} s; the busiest tick ({worst.at:%H:%M}, "
        f"{worst.requests} requests) takes {worst.requests / PACE:.0f} s at jambonz's pace, "
        f"{worst.requests / PACE / (args.every * 60):.0%} of the interval. Requests grow with "
        "the day's calls (one per 500), so at 4x the calls a tick costs about 4x. The final "
        "run after the ticks and a single run hold the same calls.",
    ]
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
