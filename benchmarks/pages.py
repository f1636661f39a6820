"""Pre-rendered RecentCalls pages of one synthetic day, built once from the simulator's generator.

A day is rendered as the `data` arrays of its pages (500 records each, attempt time descending,
server dialect), exactly the bytes the simulator would send, and cached under benchmarks/.cache so
a second run starts at once. Bigger days are copies of a rendered day whose call ids get a copy
prefix (distinct calls, same times): rendering a million records one by one would take minutes.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.jambonz import simulator as sim

CACHE = Path(__file__).resolve().parent / ".cache"
DAY = 20_000  # UTC day number: 2024-10-04
DAY_START = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=DAY)
PAGE = 500
SEED = 7


def sid_for(calls: int) -> str:
    """The account sid under which the server serves the day of `calls` calls."""
    return f"00000000-0000-4000-8000-{calls:012d}"


def _render(calls: int) -> list[bytes]:
    block = sim.generate_day(SEED, 0, DAY, calls)
    n = min(len(block), calls)  # generate_day draws a Poisson count; keep exactly `calls`
    records = [block.record(i) for i in range(n - 1, -1, -1)]
    while len(records) < calls:  # pad a short draw with re-keyed copies
        extra = dict(records[len(records) % n])
        if extra["call_sid"]:
            extra["call_sid"] = "pad" + extra["call_sid"][3:]
        extra["sip_callid"] = "pad" + extra["sip_callid"][3:]
        records.append(extra)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return [dumps(records[i : i + PAGE]).encode() for i in range(0, calls, PAGE)]


def _copy(pages: list[bytes], tag: int) -> list[bytes]:
    """The same calls under other identities: call_sid and sip_callid get a 2-char prefix."""
    p = f"{tag:02d}".encode()
    return [
        page.replace(b'"call_sid":"', b'"call_sid":"' + p).replace(
            b'"sip_callid":"', b'"sip_callid":"' + p
        )
        for page in pages
    ]


def _write(path: Path, pages: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        for page in pages:
            f.write(struct.pack("<Q", len(page)))
            f.write(page)
    tmp.replace(path)


def read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    pages, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from("<Q", data, at)
        pages.append(data[at + 8 : at + 8 + size])
        at += 8 + size
    return pages


def ensure(calls: int, base: int = 200_000) -> Path:
    """The cache file of a day of `calls` calls (a multiple of 500), rendering it if needed."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"day-{SEED}-{calls}.pages"
    if path.exists():
        return path
    if calls <= base:
        source = ensure(base, base) if calls < base else None
        pages = read(source)[: calls // PAGE] if source else _render(calls)
    else:
        one = read(ensure(base, base))
        pages = []
        for tag in range(-(-calls // base)):
            pages += one if tag == 0 else _copy(one, tag)
        pages = pages[: calls // PAGE]
    _write(path, pages)
    return path
