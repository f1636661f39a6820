"""The `dg` CLI on this project (pyproject.toml [tool.dg]): check, list, launch a day, dev.

Each command runs from the repository root, where `dg` finds the project, with the project's own
.venv, as the README tells a person to run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest

from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import BIN, ENV_VARS, cli_env
from tests.e2e.test_cli import truth_keys
from tests.e2e.test_report import _wait_for_server

pytestmark = pytest.mark.process


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


def test_dg_lists_the_definitions_with_nothing_set() -> None:
    """`dg list defs` loads the project as `dg` finds it (pyproject's [tool.dg]), which only the
    `dg` program reads (`make test` runs `dg check defs` itself)."""
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"] for a in defs["assets"]}
    assert {"calls", "trunk_kpis_daily", "calls_hourly"} <= assets
    assert "daily_sync" in {j["name"] for j in defs["jobs"]}
    assert "daily_calls_sync" in {s["name"] for s in defs["schedules"]}


RANGE = [NOW.date() - timedelta(days=n) for n in (4, 3, 2)]


def _runs(instance: dg.DagsterInstance, backfill: str | None) -> list[dg.DagsterRun]:
    """The runs of the backfill, or every run (`dg dev` also runs the freshness sensor's)."""
    filters = dg.RunsFilter(tags={"dagster/backfill": backfill}) if backfill else None
    return list(instance.get_runs(filters=filters))


def _one_run_of_the_range(home: Path, backfill: str | None = None) -> dg.DagsterRun:
    """The one run (of the backfill), which targeted RANGE, succeeded and materialized each day."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = _runs(instance, backfill)
        assert len(runs) == 1, [r.tags for r in runs]
        failures = [
            str(e.get_dagster_event().event_specific_data)
            for e in instance.all_logs(runs[0].run_id)
            if e.is_dagster_event and e.get_dagster_event().is_step_failure
        ]
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS, failures
        assert instance.get_materialized_partitions(dg.AssetKey("calls")) == {
            d.isoformat() for d in RANGE
        }
    run = runs[0]
    assert run.tags["dagster/asset_partition_range_start"] == RANGE[0].isoformat()
    assert run.tags["dagster/asset_partition_range_end"] == RANGE[-1].isoformat()
    return run


def _held_keys(env: dict[str, str]) -> list[str]:
    with duckdb.connect(env["WAREHOUSE_PATH"], read_only=True) as con:
        return [k for (k,) in con.execute("SELECT call_key FROM calls").fetchall()]


def test_dg_launch_of_a_partition_range_is_one_run(simulator: Simulator, tmp_path: Path) -> None:
    """`dg launch --partition-range` makes one run of the range: the CLI's backfill policy
    handling, which no in-process execution goes through."""
    env, home = cli_env(simulator, tmp_path)
    span = f"{RANGE[0].isoformat()}...{RANGE[-1].isoformat()}"
    done = _dg("launch", "--assets", "calls", "--partition-range", span, env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    _one_run_of_the_range(home)
    keys = _held_keys(env)
    assert len(keys) == len(set(keys))
    assert set(keys) == truth_keys(simulator, env, RANGE)


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def test_dg_dev_opens_the_ui_and_a_backfill_launched_there_is_one_run(
    simulator: Simulator, tmp_path: Path
) -> None:
    """`dg dev` serves the UI on the project, with the webserver and daemon processes it starts
    itself. The UI's "Materialize" of a range of `calls` partitions sends this GraphQL mutation;
    `dg dev`'s daemon then launches the backfill's one run."""
    env, home = cli_env(simulator, tmp_path)
    port = _free_port()
    dev = _dg_dev(env, port)
    try:
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
        assert [e["name"] for e in entries] == ["jambonz_warehouse"]
        page = httpx.get(f"http://127.0.0.1:{port}/assets", timeout=30)
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        params = {
            "assetSelection": [{"path": ["calls"]}],
            "partitionNames": [d.isoformat() for d in RANGE],
            "fromFailure": False,
        }
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": LAUNCH_BACKFILL, "variables": {"params": params}},
            timeout=60,
        ).json()["data"]["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        deadline = time.monotonic() + 300
        while not _finished_runs(home, answer["backfillId"]):
            assert time.monotonic() < deadline, "the backfill's run did not finish in 300 s"
            with contextlib.suppress(subprocess.TimeoutExpired):
                dev.wait(timeout=1.0)  # polling the instance with a deadline
            assert dev.poll() is None, "dg dev exited"
    finally:
        _stop(dev)
    _one_run_of_the_range(home, answer["backfillId"])
    assert set(_held_keys(env)) == truth_keys(simulator, env, RANGE)


def _finished_runs(home: Path, backfill: str) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r for r in _runs(instance, backfill) if r.is_finished]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dg_dev(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`dg dev` (webserver and daemon) from the repository root, answering on `port`."""
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
    except BaseException:
        _stop(dev)
        raise
    return dev


def _stop(dev: subprocess.Popen[Any]) -> None:
    """SIGTERM to `dg dev`'s group, as a service manager stops it; SIGKILL if it has not ended
    within a minute (its daemon finishing a tick on a loaded machine: how fast it stops is not
    what is tested)."""
    os.killpg(dev.pid, signal.SIGTERM)
    try:
        dev.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(dev.pid, signal.SIGKILL)
        dev.wait(timeout=60)


def test_make_dev_prints_the_url_of_the_ui_last_on_the_port_asked(tmp_path: Path) -> None:
    """`make dev PORT=...` as a newcomer types it: the simulator and `dg dev` in processes of
    their own, the UI answering at the URL printed as the last line, and SIGTERM stopping it all
    (what make's Ctrl-C or a service manager sends)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["DAGSTER_HOME"] = str(home)
    port = _free_port()
    dev = subprocess.Popen(
        ["make", "--no-print-directory", "dev", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert dev.stdout is not None
        for line in dev.stdout:  # ends when make exits; bounded by the test's timeout
            lines.append(line.rstrip("\n"))
            if line.startswith("Dagster UI: "):
                break
        url = f"http://127.0.0.1:{port}"
        assert lines[-1].startswith(f"Dagster UI: {url}  ("), lines
        assert httpx.get(f"{url}/server_info", timeout=30).status_code == 200
        # what a person sees: make's command, the simulator, the URL; no warning (dg dev's own
        # output is in its log)
        assert [line.split(":")[0] for line in lines[1:]] == ["simulator", "", "Dagster UI"], lines
    finally:
        _stop(dev)
        if dev.stdout is not None:
            dev.stdout.close()
    # nor in its log: no warning that a dagster.yaml is not used, or missing
    assert "dagster.yaml" not in (home / "dg-dev.log").read_text()
    with pytest.raises(httpx.ConnectError):  # stopped, with everything it started
        httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5)
