"""A 7-day backfill as 7 runs and as one run (pipelines/days.py): wall time and requests.

    python -m benchmarks.backfill [--days 7] [--calls 20000] [--repeat 2] [--out FILE]

The built-in simulator serves `--calls` calls a day under jambonz's default rate limit (600
requests per 5 minutes). Each way starts from an empty DAGSTER_HOME and an empty warehouse and
materializes `calls` and its four models for the same days with the `dg` CLI, as an operator
would: one `dg launch --partition D` per day, one after the other (what the daemon does for a
backfill of one run per day, without its queueing), against one `dg launch --partition-range
A...B`. Every run is a process of its own, paying Python's start, the imports and the instance's
set-up; the range pays them once. Both ways must leave the same calls.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from benchmarks import emit
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SELECTION = "calls*"  # calls and the models downstream of it


def _env(sim: Simulator, home: Path, first: date) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMBONZ_", "WAREHOUSE_"))}
    env.update(
        {
            "JAMBONZ_BASE_URL": sim.base_url,
            "JAMBONZ_API_KEY": simmod.ACCOUNT_KEY,
            "JAMBONZ_ACCOUNT_SID": simmod.ACCOUNT_SID,
            "WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
            "PARTITIONS_START_DATE": first.isoformat(),
            "PARTITIONS_TIMEZONE": "UTC",
            "DAGSTER_HOME": str(home),
        }
    )
    return env


def _launch(env: dict[str, str], *partition: str) -> None:
    done = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", SELECTION, *partition],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"dg launch {' '.join(partition)} failed:\n{done.stderr[-3000:]}")


def _calls(home: Path) -> list[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return sorted(k for (k,) in con.execute("SELECT call_key FROM calls").fetchall())


@dataclass
class Way:
    name: str
    runs: int
    seconds: float
    requests: int
    calls: list[str]


def measure(sim: Simulator, root: Path, days: list[date], *, one_run: bool) -> Way:
    """Materialize `days` one way: wall seconds, requests, runs, the calls loaded."""
    home = root / ("range" if one_run else "per-day")
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = _env(sim, home, days[0])
    before = len(sim.request_log)
    started = time.monotonic()
    if one_run:
        _launch(env, "--partition-range", f"{days[0].isoformat()}...{days[-1].isoformat()}")
    else:
        for day in days:
            _launch(env, "--partition", day.isoformat())
    seconds = time.monotonic() - started
    return Way(
        "one run for the range" if one_run else "one run per day",
        1 if one_run else len(days),
        seconds,
        len(sim.request_log) - before,
        _calls(home),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per day")
    parser.add_argument("--repeat", type=int, choices=(1, 2), default=2, help="tries of each way")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    days = [now.date() - timedelta(days=n) for n in range(args.days + 1, 1, -1)]
    tries: dict[bool, list[Way]] = {False: [], True: []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp,
        Simulator(seed=7, calls_per_day=args.calls, now=now) as sim,
    ):
        # ABBA: each way goes first once, so a machine that speeds up or slows down favours neither
        for n, one_run in enumerate([False, True, True, False][: 2 * args.repeat]):
            tries[one_run].append(measure(sim, Path(tmp) / str(n), days, one_run=one_run))
    per_day, ranged = (min(tries[way], key=lambda w: w.seconds) for way in (False, True))
    if per_day.calls != ranged.calls:
        raise SystemExit("the two ways loaded different calls")
    lines = [
        f"# A {args.days}-day backfill: {args.days} runs against one run",
        "",
        f"`python -m benchmarks.backfill --days {args.days} --calls {args.calls}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(per_day.calls)} calls, `dg launch "
        f"--assets '{SELECTION}'` (calls and its four models), each way from an empty instance "
        f"and warehouse; the faster of {args.repeat} tries of each way, in the order ABBA "
        f"(load average at the end {os.getloadavg()[0]:.1f}).",
        "",
        "| way | runs | wall s | requests | s per day |",
        "|---|---:|---:|---:|---:|",
    ]
    for way in (per_day, ranged):
        lines.append(
            f"| {way.name} | {way.runs} | {way.seconds:.1f} | {way.requests} | "
            f"{way.seconds / args.days:.2f} |"
        )
    saved = per_day.seconds - ranged.seconds
    lines += [
        "",
        f"One run: {ranged.seconds / per_day.seconds:.2f}x the wall time of {args.days} runs "
        f"({saved:.1f} s less, {saved / max(args.days - 1, 1):.1f} s for each run not started), "
        f"{ranged.requests / max(per_day.requests, 1):.2f}x the requests; the same calls.",
    ]
    return emit(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
