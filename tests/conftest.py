"""Shared fixtures: a simulator on a free loopback port, a fixed clock, the real captures, and
the warehouse's two lanes (the DuckDB file, a DuckLake in PostgreSQL) with `lane`/`each_lane`.

The suite's tiers are markers (pyproject.toml), so `make check` can leave the slow ones out:
- `process`: the test starts a Dagster process (the CLI, the daemon, `dg dev`, the webserver) or
  another program; its docstring says what that proves that an in-process run cannot. A test
  that starts `dagster`, `dagster-daemon`, `dg` or `dagster-webserver` without the marker fails.
- `lake`: the test writes a DuckLake in PostgreSQL (added here to every test that uses one).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.postgres import Postgres
from benchmarks.postgres import start as start_postgres
from pipelines.jambonz.simulator import Simulator
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
    from pipelines.jambonz.simulator import (
        ACCOUNT_SID,
        SERVICE_PROVIDER_SID,
        UNANSWERED_SENTINEL,
    )
    from pipelines.jambonz.streams import SERVER_KEYS

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
    """One PostgreSQL cluster for the session (benchmarks/postgres.py); tests take new databases."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def database_name(text: str) -> str:
    """A catalog database's name for `text` (a test's id, a folder): readable and unique."""
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return "lake_" + re.sub(r"[^a-z0-9]+", "_", text.lower())[:40] + "_" + digest


def new_lake(postgres: Postgres, name: str, folder: Path) -> Lake:
    """A fresh DuckLake: the new, empty catalog database `name` and the data folder `folder`."""
    postgres.new_database(name)
    return parse_lake(f"ducklake:postgres:{postgres.conninfo(name)}", str(folder) + "/")


@pytest.fixture
def lake(postgres: Postgres, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lake]:
    """A fresh DuckLake: a new catalog database and an empty data folder. The password reaches
    libpq through PGPASSWORD, as in production."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in postgres.env().items():
            mp.setenv(key, value)
        yield new_lake(postgres, database_name(request.node.nodeid), tmp_path / "lake-data")


# --- the tiers ----------------------------------------------------------------------------------

PROCESS = "process"
LAKE = "lake"
DAGSTER_PROGRAMS = frozenset({"dagster", "dagster-daemon", "dagster-webserver", "dg"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test on a DuckLake `lake`; refuse a `process` test without a docstring; order
    the tests heaviest first."""
    missing = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        # a lane parameter, or a fixture's own parameter ("lake": it asks for the lake fixture
        # at run time, which collection cannot see)
        on_lake = callspec is not None and "lake" in callspec.params.values()
        if on_lake or "lake" in fixtures or "postgres" in fixtures:
            item.add_marker(LAKE)
        function = getattr(item, "function", None)
        if item.get_closest_marker(PROCESS) and not (function and function.__doc__):
            missing.append(item.nodeid)
    if missing:
        raise pytest.UsageError(
            "a `process` test says in its docstring what it proves that an in-process run "
            f"cannot; these have none: {missing}"
        )
    items.sort(key=_weight)


def _weight(item: pytest.Item) -> int:
    """Heaviest first (`process`, then `slow`, then `lake`): xdist's load scheduling hands tests
    out round-robin in this order, so each worker starts on its share of the long ones and the
    short ones fill the gaps at the end."""
    for rank, marker in enumerate((PROCESS, "slow", LAKE)):
        if item.get_closest_marker(marker):
            return rank
    return 3


def _program(args: Any) -> str:
    first = args if isinstance(args, (str, Path)) else (args[0] if args else "")
    words = [str(first), *([] if isinstance(args, (str, Path)) else map(str, args[1:3]))]
    if "tests.faults.hooked_dagster" in words:
        return "dagster"
    return Path(str(first)).name


@pytest.fixture(autouse=True)
def _dagster_processes_are_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that starts a Dagster program must be marked `process` (make check leaves it out)."""
    if request.node.get_closest_marker(PROCESS):
        return
    real = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        if _program(args) in DAGSTER_PROGRAMS:
            raise AssertionError(
                f"{request.node.nodeid} starts `{_program(args)}` but is not marked "
                "@pytest.mark.process (with a docstring saying why a process is the point)"
            )
        real(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


# --- the two lanes -------------------------------------------------------------------------------

LANES = ("file", "lake")
FILE_ONLY = "file_only"  # the marker of a test about the DuckDB file itself (pyproject.toml)
ONE_LANE = "one_lane"  # a test where the warehouse is only where the calls land


def each_lane(metafunc: pytest.Metafunc) -> None:
    """pytest_generate_tests of the suites that run in both lanes: a test using the `lane`
    fixture (itself, or through make_pipeline, pipeline...) runs as [file] and [lake]; one marked
    `file_only` (about the DuckDB file) or `one_lane` (transport, paging, pacing, time parsing,
    where the warehouse is only where the calls land) is generated as [file] alone; one that
    parametrizes `lane` itself (indirect) keeps its own pairs."""
    chosen = any(  # a test that pairs lanes with its other parameters itself
        "lane" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")
    )
    if "lane" in metafunc.fixturenames and not chosen:
        one = any(metafunc.definition.get_closest_marker(m) for m in (FILE_ONLY, ONE_LANE))
        metafunc.parametrize("lane", LANES[:1] if one else LANES, indirect=True)


@pytest.fixture
def lane(request: pytest.FixtureRequest) -> Lake | None:
    """The warehouse's lane: None for the DuckDB file (WAREHOUSE_PATH), or a fresh DuckLake (the
    `lake` fixture: WAREHOUSE_URL, WAREHOUSE_DATA_PATH, PGPASSWORD). The file unless `each_lane`
    generated the test."""
    if getattr(request, "param", "file") == "file":
        return None
    lake: Lake = request.getfixturevalue("lake")
    return lake


def lake_env(lake: Lake | None) -> dict[str, str]:
    """The variables that choose a DuckLake; none for the file."""
    if lake is None:
        return {}
    return {"WAREHOUSE_URL": lake.url, "WAREHOUSE_DATA_PATH": lake.data_path}
