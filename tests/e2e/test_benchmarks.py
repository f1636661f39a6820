"""The benchmark harness runs end to end on a tiny day, so it cannot rot. No timing is asserted:
benchmarks are not tests (the targets live in benchmarks/run.py and docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(module: str, out: Path, *args: str) -> str:
    """`python -m benchmarks.<module> ... --out <out>`; the markdown it wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


pytestmark = pytest.mark.process  # each runs a benchmark command, some through `dg launch`


def test_bench_smoke_prints_the_table(tmp_path: Path) -> None:
    """`python -m benchmarks.run --smoke`: the benchmark command as `make bench` runs it."""
    text = bench("run", tmp_path / "bench.md", "--smoke")
    for scenario in ("| floor |", "| sync |", "| dagster |", "| naive |", "calls already held"):
        assert scenario in text
    assert "Peak RSS" in text
    assert "day's KPI rebuild s" in text
    assert "of the allowed rate" in text
    assert "0 429s" in text


def test_lake_bench_smoke_prints_the_table(tmp_path: Path) -> None:
    """`python -m benchmarks.lake` on 2 small days: its PostgreSQL, loads, maintenance, table."""
    text = bench("lake", tmp_path / "lake.md", "--days", "2", "--calls", "300")
    assert "| 2 |" in text
    assert "Parquet files on disk" in text
    assert "(target <= 1.5x)" in text


def test_backfill_bench_smoke_prints_the_table(tmp_path: Path) -> None:
    """`python -m benchmarks.backfill` on 2 small days: both ways through `dg launch`, one table."""
    text = bench(
        "backfill", tmp_path / "backfill.md", "--days", "2", "--calls", "200", "--repeat", "1"
    )
    assert "| one run per day | 2 |" in text
    assert "| one run for the range | 1 |" in text
    assert "the same calls" in text


def test_intraday_bench_smoke_prints_the_table(tmp_path: Path) -> None:
    """`python -m benchmarks.intraday` on a small day of 5 ticks: the ticks, the final run."""
    text = bench("intraday", tmp_path / "intraday.md", "--calls", "1000", "--every", "240")
    assert "| 20:00 |" in text
    assert "| final run, 01:00 next day |" in text
    assert "5 ticks:" in text
    assert "hold the same calls" in text
