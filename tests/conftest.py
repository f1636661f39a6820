"""Shared fixtures: a simulator on a free loopback port, a fixed clock, the real captures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.jambonz.simulator import Simulator
from tests.postgres import Postgres
from tests.postgres import start as start_postgres
from warehouse.lake import Lake
from warehouse.lake import parse as parse_lake

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


def cdr(
    call_sid: str | None, at: datetime | str, /, *, failed: bool = False, **overrides: Any
) -> dict[str, Any]:
    """A valid server-dialect record (the 21 keys in the server's order) of one inbound call.

    Answered, picked up 5 s after `at` and talked 60 s; or `failed`: a 486 failure ending at its
    attempt, with the server's 1970 answered_at sentinel. `at` as text is sent verbatim (for
    instants at nanosecond precision; failed calls only). `overrides` replace keys or add
    unknown ones (and the simulator's private `_at`).
    """
    from pipelines.jambonz.records import SERVER_KEYS
    from pipelines.jambonz.simulator import (
        ACCOUNT_SID,
        SERVICE_PROVIDER_SID,
        UNANSWERED_SENTINEL,
    )

    def ms(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    attempted = at if isinstance(at, str) else ms(at)
    if not failed:
        assert isinstance(at, datetime), "an answered call needs `at` as a datetime"
        timing = {
            "answered_at": ms(at + timedelta(seconds=5)),
            "duration": 60,
            "sip_status": 200,
            "terminated_at": ms(at + timedelta(seconds=65)),
            "termination_reason": "caller hungup",
        }
    else:
        timing = {
            "answered_at": UNANSWERED_SENTINEL,
            "duration": 0,
            "sip_status": 486,
            "terminated_at": attempted,
            "termination_reason": "failed",
        }
    values = {
        "attempted_at": attempted,
        "account_sid": ACCOUNT_SID,
        "answered": not failed,
        "call_sid": call_sid,
        "direction": "inbound",
        "from": "+15085550100",
        "host": "10.0.0.11",
        "remote_host": "3.3.3.3",
        "service_provider_sid": SERVICE_PROVIDER_SID,
        "sip_callid": f"{call_sid}@10.0.0.1",
        "to": "15085550199",
        "trunk": "twilio",
        **timing,
    }
    record = {key: values.get(key) for key in SERVER_KEYS}
    record.update(overrides)
    return record


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster for the session (tests/postgres.py); tests take fresh databases."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lake(postgres: Postgres, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lake]:
    """A fresh DuckLake: a new catalog database and an empty data folder. The password reaches
    libpq through PGPASSWORD, as in production."""
    name = "lake_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    postgres.new_database(name)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in postgres.env().items():
            mp.setenv(key, value)
        yield parse_lake(
            f"ducklake:postgres:{postgres.conninfo(name)}", str(tmp_path / "lake-data") + "/"
        )
