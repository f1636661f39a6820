"""Secrets: the API key appears in no file a run produces, no log line and no exception text.

Runs the real `dagster` CLI with DAGSTER_HOME in tmp_path (event logs, run storage, compute
logs, artifacts all land there) against the simulator, once with the accepted key and once with a
distinctive wrong one (a 401), then reads every byte under tmp_path (the DuckDB file and its WAL
included), the CLI's output and the simulator's log. In-process, every event of a failed run and
every log record are searched too.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, pipeline_env
from tests.faults.conftest import MakePipeline, failure_message

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


def _cli(sim: Simulator, root: Path, key: str) -> subprocess.CompletedProcess[str]:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(pipeline_env(sim, root / "warehouse.duckdb"))
    env.update({"DAGSTER_HOME": str(home), "JAMBONZ_API_KEY": key})
    dagster = str(Path(sys.executable).parent / "dagster")
    args = [dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select", "*"]
    return subprocess.run(
        [*args, "--partition", DAY.isoformat()],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_the_api_key_is_in_no_file_log_or_output_of_a_run(
    simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ok = _cli(simulator, tmp_path / "ok", simmod.ACCOUNT_KEY)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    refused = _cli(simulator, tmp_path / "refused", WRONG_KEY)
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr
    # The runs wrote what a real deployment writes: storage, event logs, compute logs, DuckDB.
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert "warehouse.duckdb" in written
    assert any(name.endswith(".db") for name in written), written  # sqlite event/run storage
    assert any(name.endswith((".out", ".err", ".complete")) for name in written), written
    assert _files_holding(tmp_path, KEYS) == []
    for secret in KEYS:
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
    assert _files_holding(tmp_path, (WRONG_KEY,)) == []
