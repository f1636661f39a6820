"""Interleaved A/B of the sync scenario: a git ref ("before") against the work tree ("after").

`make bench` runs each configuration once, minutes apart; on a shared machine the floor itself
moves 20% between such runs. Here the two codes alternate run by run against one page server,
each run a fresh process and a fresh DuckDB file, and the medians are compared.

Run: `python -m benchmarks.ab 532ae6a --rounds 5` (the ref is checked out in a temporary worktree).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import pages
from benchmarks.run import ROOT, PageServer, child


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab")
    parser.add_argument("ref", help="git ref of the 'before' code")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args(argv)
    before = Path(tempfile.mkdtemp(prefix="ab-before-")) / "tree"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(before), args.ref], check=True)
    server = PageServer({args.calls: pages.ensure(args.calls)})
    sid = pages.sid_for(args.calls)
    results: dict[tuple[int, int, str], list[dict[str, float]]] = {}
    try:
        for latency, conc in ((0, 1), (20, 4)):
            server.latency(latency)
            for _ in range(args.rounds):
                for name, root in (("before", before), ("after", ROOT)):
                    db = str(Path(tempfile.mkdtemp(prefix="ab-")) / "w.duckdb")
                    r = child("sync", root=root, url=server.url, sid=sid, db=db, concurrency=conc)
                    results.setdefault((latency, conc, name), []).append(r)
    finally:
        server.close()
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], check=False)
    print("| latency ms | conc | code | median s | median peak RSS MB | runs (s) |")
    print("|---|---|---|---|---|---|")
    for (latency, conc, name), runs in results.items():
        seconds = [r["seconds"] for r in runs]
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        print(
            f"| {latency} | {conc} | {name} | {statistics.median(seconds):.2f} | {rss:.0f} | "
            f"{', '.join(f'{s:.2f}' for s in seconds)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
