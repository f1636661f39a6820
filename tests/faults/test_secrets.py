"""Secrets: the API key appears in no file a run produces, no log line and no exception text.

Runs the real `dagster` CLI with DAGSTER_HOME in tmp_path (event logs, run storage, compute
logs, artifacts all land there) against the simulator, once with the accepted key and once with a
distinctive wrong one (a 401), then reads every byte under tmp_path (the DuckDB file and its WAL,
or the lake's Parquet files), the CLI's output and the simulator's log; in the lake lane also
pg_dump's text of the catalog database, searched for the catalog's password too. In-process,
every event of a failed run and every log record are searched.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from benchmarks.postgres import Postgres
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from tests.conftest import NOW
from tests.e2e.conftest import Pipeline
from tests.faults.conftest import MakePipeline, failure_message
from tests.faults.processes import cli_env

DAY = NOW.date() - timedelta(days=2)
WRONG_KEY = "wrong-key-Zq7-e8f1c0ffee-DISTINCTIVE"
KEYS = (simmod.ACCOUNT_KEY, WRONG_KEY)


def _files_holding(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                for encoded in (secret.encode(), secret.encode("utf-16-le")):
                    if encoded in data:
                        found.append(f"{path.relative_to(root)}: {secret}")
    return found


def _stored_holding(
    pipeline: Pipeline, root: Path, secrets: tuple[str, ...], request: pytest.FixtureRequest
) -> list[str]:
    """Where the secrets are stored: files under root (the lake's data folder is there too) and,
    in the lake lane, the catalog database's rows (pg_dump, which must hold the lake's tables)."""
    found = _files_holding(root, secrets)
    if pipeline.lake is not None:
        postgres: Postgres = request.getfixturevalue("postgres")
        database = re.search(r"dbname=(\S+)", pipeline.lake.conninfo)
        assert database is not None, pipeline.lake.conninfo
        dump = postgres.dump(database.group(1))
        assert "ducklake_table" in dump, "the dump holds the catalog"
        found += [f"catalog {database.group(1)}: {secret}" for secret in secrets if secret in dump]
    return found


def _cli(pipeline: Pipeline, root: Path, key: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(
        pipeline, root, JAMBONZ_API_KEY=key, WAREHOUSE_PATH=str(root / "warehouse.duckdb")
    )
    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select", "calls*"]
    return subprocess.run(
        [*args, "--partition", DAY.isoformat()],
        env=env,
        cwd=env["DAGSTER_HOME"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.process
def test_the_api_key_is_in_no_file_log_or_output_of_a_run(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    """The CLI's output, compute logs and every instance file of a real run: where a key could leak
    only a process writes (stdout, stderr, DAGSTER_HOME)."""
    caplog.set_level(logging.DEBUG)
    pipeline = make_pipeline(simulator)
    ok = _cli(pipeline, tmp_path / "ok", simmod.ACCOUNT_KEY)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    refused = _cli(pipeline, tmp_path / "refused", WRONG_KEY)
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr
    # The runs wrote what a real deployment writes: storage, event logs, compute logs, the
    # warehouse (a DuckDB file, or the lake's Parquet files).
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    if pipeline.lake is None:
        assert "warehouse.duckdb" in written
    else:
        assert any(name.endswith(".parquet") for name in written), written
        assert not any(name.endswith(".duckdb") for name in written), written
    assert any(name.endswith(".db") for name in written), written  # sqlite event/run storage
    assert any(name.endswith((".out", ".err", ".complete")) for name in written), written
    secrets: tuple[str, ...] = KEYS
    if pipeline.lake is not None:  # the catalog's password (PGPASSWORD) too
        secrets += (request.getfixturevalue("postgres").password,)
    assert _stored_holding(pipeline, tmp_path, secrets, request) == []
    for secret in secrets:
        for run in (ok, refused):
            assert secret not in run.stdout
            assert secret not in run.stderr
        assert secret not in caplog.text  # the simulator's and the client's log lines
        assert secret not in repr(simulator.request_log)


def test_a_refused_key_is_in_no_event_exception_or_log_line(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = make_pipeline(simulator, JAMBONZ_API_KEY=WRONG_KEY)
    result = pipeline.run_day(DAY)
    assert "401" in failure_message(result)
    texts = [repr(event) for event in result.all_events]
    texts += [str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
    texts.append(caplog.text)
    for text in texts:
        assert WRONG_KEY not in text
    assert _stored_holding(pipeline, tmp_path, (WRONG_KEY,), request) == []
