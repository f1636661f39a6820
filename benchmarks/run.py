"""`make bench`: how close the sync runs to fetch-and-parse speed, and in how much memory.

Starts the page server (benchmarks/server.py) in its own process, runs every scenario of
benchmarks/scenarios.py in a fresh process, and prints one table (also written to
benchmarks/results/latest.md). All figures come from one run on one machine; ratios compare runs
of the same day at the same latency and concurrency.

    python -m benchmarks.run            # everything, ~5 minutes on 2 CPUs (~8 GB of temp files)
    python -m benchmarks.run --no-30m   # without the 30M-row tier, ~3 minutes
    python -m benchmarks.run --smoke    # a 2k-call day, seconds: keeps the harness from rotting
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import pages

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    name: str
    latency_ms: int | None
    concurrency: int | None
    result: dict[str, Any]
    server_cpu_s: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return float(self.result["rows"]) / float(self.result["seconds"])


def child(name: str, *, root: Path = ROOT, **args: Any) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter, on the code in `root`; its RESULT line."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scenarios", name, json.dumps(args)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(
        f"scenario {name} {args} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
    )


class PageServer:
    def __init__(self, days: dict[int, Path]) -> None:
        argv = [sys.executable, "-m", "benchmarks.server"]
        for calls, path in days.items():
            argv += ["--day", f"{calls}:{path}"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"page server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.http = httpx.Client(base_url=self.url)

    def cpu(self) -> float:
        return float(self.http.get("/__cpu").json()["cpu_s"])

    def latency(self, ms: int) -> None:
        self.http.get("/__latency", params={"ms": str(ms)})

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


def measured(server: PageServer, name: str, latency: int, conc: int, **args: Any) -> Row:
    server.latency(latency)
    before = server.cpu()
    result = child(name, url=server.url, concurrency=conc, **args)
    return Row(name, latency, conc, result, server.cpu() - before)


def fmt_phases(phases: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in phases.items())


def table(rows: list[Row], floors: dict[tuple[int | None, int | None], float]) -> list[str]:
    out = [
        "| scenario | latency ms | conc | rows | s | rows/s | vs floor | peak RSS MB "
        "| client CPU s | server CPU s | phases (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = floors.get((r.latency_ms, r.concurrency))
        ratio = f"{r.rows_per_s / base:.0%}" if base else ""
        out.append(
            f"| {r.name} | {r.latency_ms if r.latency_ms is not None else ''} "
            f"| {r.concurrency or ''} | {r.result['rows']:,} | {r.result['seconds']:.2f} "
            f"| {r.rows_per_s:,.0f} | {ratio} | {r.result['peak_rss_mb']:.0f} "
            f"| {r.result['cpu_s']:.2f} "
            f"| {'' if r.server_cpu_s is None else f'{r.server_cpu_s:.2f}'} "
            f"| {fmt_phases(r.result.get('phases', {}))} |"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--smoke", action="store_true", help="a 2k-call day, seconds")
    parser.add_argument("--no-30m", action="store_true", help="skip the 30M-row tier")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=4, help="at 20 ms latency")
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the table")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    smoke = args.smoke
    calls = 2_000 if smoke else args.calls
    tiers = [20_000] if smoke else [1_000_000, 10_000_000] + ([] if args.no_30m else [30_000_000])
    tier_day = 2_000 if smoke else 100_000
    rss_days = [2_000] if smoke else [100_000, 200_000, 1_000_000]
    limit, window_s, rl_calls = (60, 2.0, 1_000) if smoke else (60, 20.0, 11_000)
    out = args.out or (None if smoke else RESULTS / "latest.md")

    print(f"rendering pages ({calls:,} calls a day)...", flush=True)
    base = calls if smoke else 200_000
    days = {n: pages.ensure(n, base=base) for n in sorted({calls, tier_day, *rss_days})}
    server = PageServer(days)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    rows: list[Row] = []
    notes: list[str] = []
    try:
        sid = pages.sid_for(calls)

        def db(name: str) -> str:
            return str(work / f"{name}.duckdb")

        # the smoke runs each scenario once, at 0 ms: the harness, not the figures
        passes = ((0, 1),) if smoke else ((0, 1), (20, args.concurrency))
        for latency, conc in passes:
            print(f"latency {latency} ms, concurrency {conc}...", flush=True)
            rows.append(measured(server, "floor", latency, conc, sid=sid))
            rows.append(measured(server, "sync", latency, conc, sid=sid, db=db(f"s{latency}")))
            rows.append(measured(server, "dagster", latency, conc, sid=sid, db=db(f"d{latency}")))
            rows.append(measured(server, "naive", latency, 1, sid=sid, db=db(f"n{latency}")))
            again = measured(server, "sync", latency, conc, sid=sid, db=db(f"s{latency}"))
            again.name = "sync again (all unchanged)"
            rows.append(again)
        server.latency(0)
        floors = {(r.latency_ms, r.concurrency): r.rows_per_s for r in rows if r.name == "floor"}

        print("scale tiers...", flush=True)
        scale: list[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        built = 0
        for tier in tiers:
            b = child("build", db=db("scale"), rows=tier, start=built)
            built = tier
            res = child("sync", url=server.url, sid=pages.sid_for(tier_day), db=db("scale"))
            scale.append((tier, b, res, child("kpis", db=db("scale"))))

        print("peak RSS by day size...", flush=True)
        rss = [
            (n, child("sync", url=server.url, sid=pages.sid_for(n), db=db(f"rss{n}")))
            for n in rss_days
        ]

        print(f"rate limit {limit} per {window_s:g} s...", flush=True)
        rl = child("ratelimit", limit=limit, window_s=window_s, calls=rl_calls)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"a day of {calls:,} calls ({calls // 500} pages of 500) served from pre-rendered pages "
        "by a separate process.",
        "",
        *table(rows, floors),
        "",
    ]
    by = {(r.name, r.latency_ms): r for r in rows}
    for lat in sorted({latency for latency, _ in passes}):
        s, f, n = by[("sync", lat)], by[("floor", lat)], by[("naive", lat)]
        d = by[("dagster", lat)]
        lines.append(
            f"- {lat} ms: sync {s.rows_per_s / f.rows_per_s:.0%} of the floor, "
            f"{s.rows_per_s / n.rows_per_s:.1f}x the naive baseline; Dagster adds "
            f"{d.result['phases']['dagster']:.2f} s around the asset body "
            f"(+{d.result['phases']['import']:.2f} s importing)."
        )
    lines += [
        "",
        f"Loading one {tier_day:,}-call day (new calls) into a table already holding N calls:",
        "",
        "| calls already held | build s | sync s (vs first tier) | load + commit s "
        "| load vs first tier | day's KPI rebuild s (vs first tier) |",
        "|---|---|---|---|---|---|",
    ]

    def written(r: dict[str, Any]) -> float:
        return float(r["phases"]["load"]) + float(r["phases"]["commit"])

    first_load, first_sync = written(scale[0][2]), scale[0][2]["seconds"]
    first_kpis = scale[0][3]["seconds"]
    for tier, b, sr, k in scale:
        lines.append(
            f"| {tier:,} | {b['seconds']:.1f} "
            f"| {sr['seconds']:.2f} ({sr['seconds'] / first_sync:.2f}x) "
            f"| {written(sr):.2f} | {written(sr) / first_load:.2f}x "
            f"| {k['seconds']:.2f} ({k['seconds'] / first_kpis:.2f}x) |"
        )
    if args.no_30m and not smoke:
        lines.append("| 30,000,000 | (skipped: `--no-30m`) | | | | |")
    lines += [
        "",
        "Peak RSS of the sync by day size (fresh process each):",
        "",
        "| calls in the day | peak RSS MB | vs smallest | s | rows/s |",
        "|---|---|---|---|---|",
    ]
    smallest = rss[0][1]["peak_rss_mb"]
    for size, res in rss:
        lines.append(
            f"| {size:,} | {res['peak_rss_mb']:.0f} | {res['peak_rss_mb'] / smallest:.2f}x "
            f"| {res['seconds']:.2f} | {res['rows'] / res['seconds']:,.0f} |"
        )
    lines += [
        "",
        f"Rate limit {limit} requests per {window_s:g} s, reserve 20% "
        f"(allowed {rl['allowed_rate']:.2f} requests/s): {rl['in_two_windows']} requests in the "
        f"first two windows = {rl['achieved_rate']:.2f}/s, **{rl['share']:.0%} of the allowed "
        f"rate**, {rl['n429']} 429s, lowest RateLimit-Remaining seen {rl['min_remaining']} "
        f"(reserve {'kept' if rl['reserve_kept'] else 'BROKEN'}); {rl['requests']} requests, "
        f"{rl['rows']:,} calls in {rl['seconds']:.1f} s.",
    ]
    lines += ["", "Targets:", ""]
    s0, f0, n0 = by[("sync", 0)], by[("floor", 0)], by[("naive", 0)]
    last = scale[-1]
    checks = [
        ("sync >= 60% of the floor at 0 ms", s0.rows_per_s / f0.rows_per_s, 0.60, "{:.0%}"),
    ]
    if ("sync", 20) in by:  # not in the smoke
        s20, f20 = by[("sync", 20)], by[("floor", 20)]
        checks.append(
            (
                f"sync >= 60% of the floor at 20 ms, concurrency {args.concurrency}",
                s20.rows_per_s / f20.rows_per_s,
                0.60,
                "{:.0%}",
            )
        )
    checks += [
        (">= 5x the naive baseline (0 ms)", s0.rows_per_s / n0.rows_per_s, 5.0, "{:.1f}x"),
        (
            f"day into {last[0]:,} rows <= 1.5x the day into {scale[0][0]:,} (sync time)",
            last[2]["seconds"] / first_sync,
            -1.5,
            "{:.2f}x",
        ),
        (
            f"day's KPI rebuild on {last[0]:,} rows <= 1.5x on {scale[0][0]:,}",
            last[3]["seconds"] / first_kpis,
            -1.5,
            "{:.2f}x",
        ),
        (
            f"peak RSS of a {rss[-1][0]:,}-call day <= 1.25x a {rss[0][0]:,}-call day",
            rss[-1][1]["peak_rss_mb"] / smallest,
            -1.25,
            "{:.2f}x",
        ),
        (
            f"peak RSS of a {rss[-1][0]:,}-call day under 512 MB",
            rss[-1][1]["peak_rss_mb"],
            -512.0,
            "{:.0f} MB",
        ),
        ("rate-limited: >= 90% of the allowed rate", rl["share"], 0.90, "{:.0%}"),
        (
            "rate-limited: zero 429s, reserve kept",
            float(rl["n429"] == 0 and rl["reserve_kept"]),
            1.0,
            "{}",
        ),
    ]
    for name, value, bound, form in checks:
        ok = value <= -bound if bound < 0 else value >= bound
        shown = ("yes" if value else "no") if form == "{}" else form.format(value)
        lines.append(f"- {'met' if ok else 'MISSED'}: {name}: {shown}")
    lines += ["", f"Total benchmark time {time.perf_counter() - started:.0f} s.", *notes]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
