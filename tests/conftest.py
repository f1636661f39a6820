"""Shared fixtures: a simulator on a free loopback port, a fixed clock, the real captures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.jambonz.simulator import Simulator

CAPTURES = Path(__file__).parent / "fixtures" / "real-responses"

# A fixed "now" for tests: days before it are settled, the day of it is still filling.
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Capture:
    """One HTTP response captured from a running jambonz server."""

    name: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def load_capture(name: str) -> Capture:
    raw = (CAPTURES / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Capture(name, status, headers, body)


@pytest.fixture(scope="session")
def captures() -> dict[str, Capture]:
    return {p.name: load_capture(p.name) for p in sorted(CAPTURES.glob("*.http"))}


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A server-dialect simulator with a frozen clock at NOW and no rate limit pressure."""
    with Simulator(seed=7, calls_per_day=400, now=NOW) as sim:
        yield sim
