"""Throughput and memory benchmarks of the sync, run by hand (`make bench`); not tests."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> int:
    """Print a benchmark's markdown, and write it to `out` when given; the exit status."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)
    return 0
