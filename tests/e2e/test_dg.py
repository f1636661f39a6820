"""The `dg` CLI on this project (pyproject.toml [tool.dg]): check, list, launch a day, dev.

Each command runs from the repository root, where `dg` finds the project, with the project's own
.venv, as the README tells a person to run them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import BIN, ENV_VARS, cli_env
from tests.e2e.test_cli import truth_keys
from tests.e2e.test_report import _wait_for_server

pytestmark = pytest.mark.e2e


def _dg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    bare = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [str(BIN / "dg"), *args],
        cwd=REPO_ROOT,
        env=env or bare,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dg_checks_and_lists_the_definitions_with_nothing_set() -> None:
    checked = _dg("check", "defs")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"] for a in defs["assets"]}
    assert {"calls", "trunk_kpis_daily", "calls_hourly"} <= assets
    assert "daily_sync" in {j["name"] for j in defs["jobs"]}
    assert "daily_calls_sync" in {s["name"] for s in defs["schedules"]}


def test_dg_launch_materializes_a_day(simulator: Simulator, tmp_path: Path) -> None:
    env, _ = cli_env(simulator, tmp_path)
    day = NOW.date() - timedelta(days=2)
    done = _dg("launch", "--assets", "calls", "--partition", day.isoformat(), env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "RUN_SUCCESS" in out
    assert env["JAMBONZ_API_KEY"] not in out
    with duckdb.connect(env["WAREHOUSE_PATH"], read_only=True) as con:
        keys = [k for (k,) in con.execute("SELECT call_key FROM calls").fetchall()]
    assert len(keys) == len(set(keys))
    assert set(keys) == truth_keys(simulator, env, [day])


def test_dg_dev_opens_the_ui_on_the_project(simulator: Simulator, tmp_path: Path) -> None:
    env, _ = cli_env(simulator, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dev = subprocess.Popen(
        [str(BIN / "dg"), "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # dg dev starts dagster dev, its webserver and daemon: one group
    )
    try:
        _wait_for_server(dev, f"http://127.0.0.1:{port}/server_info")
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
        assert [e["name"] for e in entries] == ["jambonz_warehouse"]
        page = httpx.get(f"http://127.0.0.1:{port}/assets", timeout=30)
        assert page.status_code == 200
        assert "<html" in page.text.lower()
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=60)
