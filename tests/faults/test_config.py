"""Configuration faults through the real `daily_sync` job: one line naming the cause, no retry
storm, nothing written.

A wrong API key, an account sid of the wrong format, an account the key may not read, a base URL
nobody answers, in both lanes; an unwritable warehouse path, on the file (a lake's unwritable
data path: tests/e2e/test_lake.py). Each is checked twice: on a fresh checkout (the file must not
be created, the lake must hold no row) and beside a warehouse holding a day (it must not change).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.jambonz.simulator import Simulator
from tests.conftest import NOW
from tests.faults.conftest import (
    FAST,
    MakePipeline,
    failure_message,
)

DAY = NOW.date() - timedelta(days=2)
BEFORE_DAY = DAY - timedelta(days=1)
UNKNOWN_ACCOUNT = "0f0f0f0f-1111-4222-8333-444455556666"


def _one_line(message: str) -> str:
    text = message.strip()
    assert "\n" not in text, f"not one line: {text!r}"
    return text


@pytest.fixture(params=["fresh", "existing"])
def existing(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "existing")


def _prepare(pipeline_ok: object, existing: bool) -> None:
    from tests.e2e.conftest import Pipeline

    assert isinstance(pipeline_ok, Pipeline)
    if existing:
        assert pipeline_ok.run_day(BEFORE_DAY).success


@pytest.mark.parametrize(
    ("env", "expect", "requests"),
    [
        ({"JAMBONZ_API_KEY": "wrong-key-7Qz"}, ["401", "JAMBONZ_API_KEY", DAY.isoformat()], 1),
        ({"JAMBONZ_ACCOUNT_SID": "ACCT-0001"}, ["JAMBONZ_ACCOUNT_SID='ACCT-0001'"], 0),
        ({"JAMBONZ_ACCOUNT_SID": UNKNOWN_ACCOUNT}, ["403", UNKNOWN_ACCOUNT, DAY.isoformat()], 1),
    ],
    ids=["wrong-api-key", "malformed-account-sid", "account-the-key-may-not-read"],
)
def test_a_credential_mistake_fails_at_once_and_writes_nothing(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    monkeypatch: pytest.MonkeyPatch,
    existing: bool,
    env: dict[str, str],
    expect: list[str],
    requests: int,
) -> None:
    pipeline = make_pipeline(simulator)
    _prepare(pipeline, existing)
    before = pipeline.snapshot()
    sent = len(simulator.request_log)
    pipeline = make_pipeline(simulator, **env)  # the settings are read again, as at a restart
    result = pipeline.run_day(DAY)
    assert not result.success
    message = _one_line(failure_message(result))
    for text in expect:
        assert text in message, message
    assert "wrong-key-7Qz" not in message
    assert len(simulator.request_log) - sent == requests, "no retries"
    assert pipeline.snapshot() == before
    assert pipeline.written() == existing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "retry" in record.getMessage()


@pytest.fixture
def retries() -> Iterator[_Retries]:
    handler = _Retries()
    logger = logging.getLogger("pipelines.jambonz.client")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_base_url_nobody_answers_fails_after_bounded_attempts_and_writes_nothing(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    existing: bool,
    retries: _Retries,
) -> None:
    """Fresh: the URL never answered this Dagster instance, so it is a setting to fix: the run
    fails naming JAMBONZ_BASE_URL, not retried. Existing: jambonz answered this instance before
    (a day synced), so it is a server down: the step's retry rule takes it (SYNC_RETRIES=0 here:
    the step gives up after its one attempt, saying so)."""
    pipeline = make_pipeline(simulator)
    _prepare(pipeline, existing)
    before = pipeline.snapshot()
    dead = f"http://127.0.0.1:{_free_port()}"
    instance = pipeline.instance
    pipeline = make_pipeline(simulator, base_url=dead)
    if existing:
        pipeline.instance = instance  # the instance that synced the day before
    result = pipeline.run_day(DAY)
    message = _one_line(failure_message(result))
    for text in (dead, "did not answer", "Connection refused", DAY.isoformat()):
        assert text in message, message
    if existing:
        assert "gave up after 1 attempt" in message, message
        assert "JAMBONZ_BASE_URL" not in message
    else:
        assert f"JAMBONZ_BASE_URL={dead!r}" in message, message
        assert "not retried" in message
    assert retries.count == FAST["max_attempts"] - 1, "bounded: no retry storm"
    assert pipeline.snapshot() == before


@pytest.mark.file_only  # WAREHOUSE_PATH itself
@pytest.mark.parametrize("kind", ["parent-is-a-file", "path-is-a-directory"])
def test_an_unwritable_warehouse_path_fails_before_any_request_naming_the_variable(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, kind: str
) -> None:
    if kind == "parent-is-a-file":
        (tmp_path / "a-file").write_text("not a folder")
        path = tmp_path / "a-file" / "warehouse.duckdb"
    else:
        path = tmp_path / "a-folder"
        path.mkdir()
    pipeline = make_pipeline(simulator, warehouse=path)
    result = pipeline.run_day(DAY)
    message = _one_line(failure_message(result))
    assert f"WAREHOUSE_PATH={str(path)!r}" in message, message
    assert simulator.request_log == [], "no request is spent on a run that cannot write"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a-file"] if kind == "parent-is-a-file" else ["a-folder"]
    )
    assert not any((tmp_path / "a-folder").iterdir()) if kind != "parent-is-a-file" else True
