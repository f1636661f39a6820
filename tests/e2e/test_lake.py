"""The DuckLake lane through the real definitions: WAREHOUSE_URL=ducklake:postgres:..., a real
PostgreSQL catalog (benchmarks/postgres.py), Parquet files in a folder.

The same tables, columns and types as the file; the same checks and metadata; bad settings fail
the first step naming the variable before any request; the catalog's password (PGPASSWORD)
appears nowhere a person or a log could read it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from benchmarks.postgres import Postgres
from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT, SettingsError, load_settings
from tests.conftest import NOW, lake_env
from tests.e2e.conftest import BIN, ENV_VARS, Pipeline, cli_env
from tests.faults.conftest import MakePipeline, failure_message
from tests.faults.conftest import make_pipeline as make_pipeline  # the fixture, shared
from tests.helpers import readme_sql
from warehouse.database import Warehouse
from warehouse.lake import Lake
from warehouse.migrate import TABLES

DAY = NOW.date() - timedelta(days=2)
MATERIALIZE_CALLS = ("asset", "materialize", "-m", "pipelines.definitions", "--select", "calls")
# what the daily job materializes: calls and the models (not lake_maintenance, its own schedule)
DAY_ASSETS = "calls,call_durations_daily,answer_rates_daily,trunk_kpis_daily,calls_hourly"
MATERIALIZE_DAY = ("asset", "materialize", "-m", "pipelines.definitions", "--select", DAY_ASSETS)


def columns(wh: Warehouse) -> dict[str, list[tuple[str, str]]]:
    """Every data table's (column, type), in order."""
    return {t: [(r[0], r[1]) for r in wh.con.execute(f"DESCRIBE {t}").fetchall()] for t in TABLES}


def _keys(pipeline: Pipeline, lake: Lake) -> list[str]:
    with Warehouse(lake, read_only=True) as wh:
        return [r[0] for r in wh.con.execute("SELECT call_key FROM calls").fetchall()]


def test_a_day_lands_in_the_lake_as_in_the_file(
    simulator: Simulator, make_pipeline: MakePipeline, lake: Lake, postgres: Postgres
) -> None:
    pipeline = make_pipeline(simulator, **lake_env(lake))
    result = pipeline.run_day(DAY)
    assert result.success
    truth = pipeline.truth(DAY)
    keys = _keys(pipeline, lake)
    assert len(keys) == len(set(keys)) == len(truth)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks
    # the data checks pass; the WARN ones judge the traffic (the simulator's +882 calls are
    # irsf_destination's high risk every day)
    errors = [e for e in checks.values() if e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors
    assert all(e.passed for e in errors), checks
    (mat,) = result.asset_materializations_for_node("calls")
    assert mat.metadata["inserted"].value == len(truth)
    # the same partition again: nothing changes, nothing is doubled
    again = pipeline.run_day(DAY)
    (mat,) = again.asset_materializations_for_node("calls")
    assert (mat.metadata["inserted"].value, mat.metadata["updated"].value) == (0, 0)
    assert sorted(_keys(pipeline, lake)) == sorted(keys)
    # the same tables, columns and types as the DuckDB file
    file_pipeline = make_pipeline(simulator, WAREHOUSE_URL="", WAREHOUSE_DATA_PATH="")
    assert file_pipeline.run_day(DAY).success
    with (
        Warehouse(lake, read_only=True) as in_lake,
        Warehouse(file_pipeline.warehouse, read_only=True) as in_file,
    ):
        assert columns(in_lake) == columns(in_file)
        for model in ("trunk_kpis_daily", "calls_hourly", "answer_rates_daily"):
            query = f"SELECT * FROM {model} ORDER BY ALL"  # noqa: S608
            assert in_lake.con.execute(query).fetchall() == in_file.con.execute(query).fetchall()
    # the password went to libpq by PGPASSWORD and nowhere else
    events = pipeline.instance.all_logs(result.run_id)
    text = "\n".join(str(e) for e in events) + repr(pipeline.settings)
    assert postgres.password not in text
    assert postgres.password not in str(pipeline.defs.resources)


S3_SECRET = "s3-secret-never-shown-Zq7"


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3-compatible server on loopback (moto's server, speaking S3's HTTP API) with an empty
    bucket `jw-lake`; the lake gets its credentials the AWS SDK's way, from the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ACCESS_KEY_ID": "jw-test-key",
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="jw-lake")
        yield "jw-lake"
    finally:
        server.stop()


def _objects(bucket: str) -> list[str]:
    import boto3

    listed = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(
        Bucket=bucket
    )
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_day_lands_in_a_lake_on_s3(
    simulator: Simulator, make_pipeline: MakePipeline, lake: Lake, s3_bucket: str
) -> None:
    on_s3 = dataclasses.replace(lake, data_path=f"s3://{s3_bucket}/jw/")
    pipeline = make_pipeline(simulator, **lake_env(on_s3))
    result = pipeline.run_day(DAY)
    assert result.success
    truth = pipeline.truth(DAY)
    keys = _keys(pipeline, on_s3)
    assert len(keys) == len(set(keys)) == len(truth)
    parquet = [k for k in _objects(s3_bucket) if k.endswith(".parquet")]
    assert parquet
    assert all(k.startswith("jw/main/") for k in parquet), parquet
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR)
    again = pipeline.run_day(DAY)  # nothing changes, nothing doubles
    (mat,) = again.asset_materializations_for_node("calls")
    assert (mat.metadata["inserted"].value, mat.metadata["updated"].value) == (0, 0)
    assert sorted(_keys(pipeline, on_s3)) == sorted(keys)
    events = "\n".join(str(e) for e in pipeline.instance.all_logs(result.run_id))
    assert S3_SECRET not in events + repr(pipeline.settings) + str(pipeline.defs.resources)


def test_a_missing_bucket_fails_before_any_request_naming_the_data_path(
    simulator: Simulator, make_pipeline: MakePipeline, lake: Lake, s3_bucket: str
) -> None:
    on_s3 = dataclasses.replace(lake, data_path="s3://no-such-bucket/jw/")
    sent = len(simulator.request_log)
    result = make_pipeline(simulator, **lake_env(on_s3)).run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert "WAREHOUSE_DATA_PATH='s3://no-such-bucket/jw/' cannot be written" in message, message
    assert S3_SECRET not in message
    assert len(simulator.request_log) == sent, "no request before the data path answered"


@pytest.mark.parametrize("fault", ["catalog-down", "data-path-a-file"])
def test_a_lake_that_cannot_be_written_fails_before_any_request(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    lake: Lake,
    postgres: Postgres,
    tmp_path: Path,
    fault: str,
) -> None:
    env = lake_env(lake)
    if fault == "catalog-down":
        env["WAREHOUSE_URL"] = env["WAREHOUSE_URL"].replace(f"port={postgres.port}", "port=9")
        named = "WAREHOUSE_URL"
    else:
        (tmp_path / "a-file").write_text("")
        env["WAREHOUSE_DATA_PATH"] = str(tmp_path / "a-file" / "lake")
        named = "WAREHOUSE_DATA_PATH"
    sent = len(simulator.request_log)
    pipeline = make_pipeline(simulator, **env)
    result = pipeline.run_day(DAY)
    assert not result.success
    message = failure_message(result)
    assert named in message, message
    assert postgres.password not in message
    assert len(simulator.request_log) == sent, "no request before the warehouse answered"


@pytest.mark.parametrize(
    ("url", "data_path", "says"),
    [
        ("ducklake:mysql:db=x", "/tmp/x", "WAREHOUSE_URL names catalog 'mysql'"),
        ("ducklake:postgres:", "/tmp/x", "has no connection string"),
        ("ducklake:postgres:dbname=x password=hunter2-secret", "/tmp/x", "PGPASSWORD"),
        ("ducklake:postgres://jw:hunter2-secret@db/x", "/tmp/x", "PGPASSWORD"),
        ("ducklake:postgres:dbname=x", "", "WAREHOUSE_DATA_PATH is required"),
        ("ducklake:postgres:dbname=x", "gs://b/x", "expected a folder or an s3:// URL"),
    ],
)
def test_a_malformed_lake_setting_is_named_without_its_secret(
    url: str, data_path: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    env = {"WAREHOUSE_URL": url, "WAREHOUSE_DATA_PATH": data_path}
    with pytest.raises(SettingsError, match=says) as caught:
        load_settings(env)
    assert "hunter2" not in str(caught.value)


def test_a_data_path_without_a_lake_url_is_a_mistake_named() -> None:
    with pytest.raises(SettingsError, match="WAREHOUSE_DATA_PATH is set but WAREHOUSE_URL"):
        load_settings({"WAREHOUSE_DATA_PATH": "/srv/lake"})


def test_definitions_load_with_a_lake_and_name_it_in_the_resource(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.definitions import build_definitions

    settings = load_settings(lake_env(lake))
    defs = build_definitions(settings)
    resource = (defs.resources or {})["warehouse"]
    assert isinstance(resource, dg.ConfigurableResource)
    assert resource.url == lake.url  # type: ignore[attr-defined]


CHUNK = 1_000  # SYNC_CHUNK_RECORDS of these runs: six chunks a day, one transaction


@pytest.fixture
def busy_simulator() -> Iterator[Simulator]:
    """6,000 calls a day: with SYNC_CHUNK_RECORDS=CHUNK a day's window is loaded in six chunks,
    so a reader (or a kill) could catch a day half-written if a window did not commit as one."""
    # no rate limit: five runs at once would wait for the 600/5 min bucket (the pacing has tests
    # of its own)
    with Simulator(seed=13, calls_per_day=6_000, now=NOW, rate_limit=None) as sim:
        yield sim


def _dagster(
    env: dict[str, str], home: Path, args: tuple[str, ...], day: date, *, stdout: int
) -> subprocess.Popen[str]:
    """`dagster <args> --partition <day>` in its own process group (SIGKILL-able as a whole),
    its stderr merged into stdout."""
    return subprocess.Popen(
        [str(BIN / "dagster"), *args, "--partition", day.isoformat()],
        env=env,
        cwd=home,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _final_counts(lake: Lake) -> dict[str, int]:
    with Warehouse(lake, read_only=True) as wh:
        rows = wh.con.execute(
            "SELECT CAST(attempted_at AS DATE)::VARCHAR, count(DISTINCT call_key) FROM calls "
            "GROUP BY ALL"
        ).fetchall()
    return {day: int(n) for day, n in rows}


def test_maintenance_compacts_the_lake_and_keeps_every_row(
    simulator: Simulator, make_pipeline: MakePipeline, lake: Lake
) -> None:
    pipeline = make_pipeline(simulator, **lake_env(lake))
    days = [NOW.date() - timedelta(days=n) for n in (3, 2)]
    for day in days:
        assert pipeline.run_day(day).success
    assert pipeline.run_day(days[-1]).success  # a look-back re-sync: models rebuilt again

    def rows() -> dict[str, list[tuple[object, ...]]]:
        with Warehouse(lake, read_only=True) as wh:
            return {t: sorted(wh.con.table(t).fetchall(), key=repr) for t in TABLES}

    before = rows()
    on_disk_before = len(list(Path(lake.data_path).rglob("*.parquet")))
    job = pipeline.defs.resolve_job_def("lake_maintenance_job")
    config = {"snapshot_retention_hours": 0, "file_grace_hours": 0}  # everything old, now
    result = job.execute_in_process(
        instance=pipeline.instance, run_config={"ops": {"lake_maintenance": {"config": config}}}
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("lake_maintenance")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["live_data_files"] < meta["live_data_files_before"]
    assert meta["snapshots"] < meta["snapshots_before"]
    on_disk = len(list(Path(lake.data_path).rglob("*.parquet")))
    assert on_disk < on_disk_before
    assert on_disk == meta["tracked_data_files"] + meta["live_delete_files"]
    # every data table is partitioned by month (schema/lake/007): merges stay within a month
    parquet = Path(lake.data_path).rglob("*.parquet")
    folders = {p.parent.relative_to(lake.data_path) for p in parquet}
    months = {f"year={d.year}/month={d.month}" for d in days}
    tables = {f.parts[1] for f in folders} & set(TABLES)
    assert tables >= {"calls", "calls_raw", "trunk_kpis_daily"}, folders
    assert {"/".join(f.parts[2:]) for f in folders if f.parts[1] in TABLES} <= months, folders
    assert rows() == before  # nothing lost, nothing doubled
    # and the pipeline goes on writing to the compacted lake
    assert pipeline.run_day(days[0]).success
    assert rows()["calls"] == before["calls"]


def test_the_file_lane_has_no_lake_maintenance(
    make_pipeline: MakePipeline, simulator: Simulator
) -> None:
    pipeline = make_pipeline(simulator)
    jobs = {j.name for j in pipeline.defs.resolve_all_job_defs()}
    assert "daily_sync" in jobs
    assert "lake_maintenance_job" not in jobs


def test_the_readmes_attach_line_and_recipes_work_on_the_lake(
    simulator: Simulator,
    make_pipeline: MakePipeline,
    lake: Lake,
    postgres: Postgres,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The analyst's Python lines from docs/lake.md "Reading the lake", pointed at this lake, then
    every SQL recipe of the README through that connection."""
    pipeline = make_pipeline(simulator, **lake_env(lake))
    assert pipeline.run_day(DAY).success
    page = (REPO_ROOT / "docs" / "lake.md").read_text()
    section = page.split("## Reading the lake", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "dbname=jw host=db.internal user=jw" in code
    code = code.replace("dbname=jw host=db.internal user=jw", lake.conninfo)
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - docs/lake.md's own lines, the test's conninfo
    assert "day" in capsys.readouterr().out  # the .show() of its last line printed the table
    con = namespace["con"]
    assert isinstance(con, duckdb.DuckDBPyConnection)
    ((calls,),) = con.execute("SELECT count(*) FROM calls").fetchall()
    assert calls == len(pipeline.truth(DAY))
    for statement in readme_sql():
        con.execute(statement).fetchall()
    con.close()


@pytest.mark.process
def test_a_run_killed_mid_load_leaves_nothing_visible_and_no_orphan_counted(
    busy_simulator: Simulator,
    make_pipeline: MakePipeline,
    lake: Lake,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    """SIGKILL to a `dagster asset materialize` once its first Parquet file is written (its
    transaction open): no call of the day is visible; the next run loads the day whole; the
    maintenance deletes the killed run's orphaned files."""
    simulator = busy_simulator
    env, home = cli_env(simulator, tmp_path, **lake_env(lake), SYNC_CHUNK_RECORDS=str(CHUNK))
    env.update(postgres.env())
    with Warehouse(lake):
        pass
    data = Path(lake.data_path)
    committed = set(data.rglob("*.parquet"))
    run = _dagster(env, home, MATERIALIZE_CALLS, DAY, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not set(data.rglob("*.parquet")) - committed:  # the load has written, not committed
        assert run.poll() is None, "the run ended before it wrote a file"
        assert time.monotonic() < deadline, "no Parquet file within 240 s"
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    orphans = set(data.rglob("*.parquet")) - committed
    assert orphans
    assert _final_counts(lake) == {}, "a killed run's rows are visible"
    pipeline = make_pipeline(simulator, **lake_env(lake))
    assert pipeline.run_day(DAY).success
    truth = len(pipeline.truth(DAY))
    assert _final_counts(lake) == {DAY.isoformat(): truth}
    job = pipeline.defs.resolve_job_def("lake_maintenance_job")
    config = {"snapshot_retention_hours": 0, "file_grace_hours": 0}
    result = job.execute_in_process(
        instance=pipeline.instance, run_config={"ops": {"lake_maintenance": {"config": config}}}
    )
    assert result.success
    assert not orphans & set(data.rglob("*.parquet")), "the killed run's files were left"
    assert _final_counts(lake) == {DAY.isoformat(): truth}
