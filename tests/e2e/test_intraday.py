"""Today's calls as they happen (pipelines/intraday.py), on the simulator's controllable clock.

The simulator writes a call when it ends (plus a write buffer), as jambonz does, and its Date
header is its own clock, which decides whether a sync saw a day settled. `D` is the simulator's
"today"; its clock is set to each tick's instant and the real definitions run in-process against
a real warehouse, in both lanes.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time as clock
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from pipelines.definitions import build_definitions
from pipelines.intraday import JOB, SENSOR, local_day, tick
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.models import CALL_MODELS
from pipelines.settings import load_settings
from tests.conftest import NOW, database_name, each_lane, lake_env, new_lake
from tests.e2e.conftest import BIN, Pipeline, cli_env, running_daemon
from tests.e2e.test_dagster_sync import _keys
from tests.helpers import record_identity
from tests.integration.test_notifications import SECRET, Receiver
from warehouse.database import Warehouse

D = NOW.date()
MODULE = ("-m", "pipelines.definitions")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    each_lane(metafunc)


def at(hour: int, minute: int = 0, day: date = D) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """2000 calls a day (enough for calls that run past midnight), its clock frozen at 06:00."""
    with Simulator(seed=7, calls_per_day=2000, now=at(6)) as sim:
        yield sim


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (mat,) = result.asset_materializations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _truth(pipeline: Pipeline, day: date) -> set[str]:
    return {record_identity(r) for r in pipeline.truth(day)}


def _complete(pipeline: Pipeline, day: date) -> dict[str, set[bool]]:
    """The day's status: calls_days.complete, and each model's distinct `complete` values."""
    with pipeline.connect(read_only=True) as con:
        status = {
            "calls_days": {
                r[0]
                for r in con.execute(
                    "SELECT complete FROM calls_days WHERE day = $day", {"day": day}
                ).fetchall()
            }
        }
        for name in CALL_MODELS:
            rows = con.execute(
                f"SELECT DISTINCT complete FROM {name} WHERE day = $day",  # noqa: S608
                {"day": day},
            ).fetchall()
            status[name] = {r[0] for r in rows}
    return status


def test_calls_that_end_during_the_day_appear_on_the_next_tick(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    sim.set_clock(at(9))
    first = pipeline.run_today(D)
    meta = _metadata(first, "calls_today")
    seen = set(_keys(pipeline, D))
    assert seen == _truth(pipeline, D)
    assert len(seen) > 100
    assert (meta["day"], meta["provisional"], meta["inserted"]) == (D.isoformat(), True, len(seen))

    sim.advance(15 * 60)
    ended = _truth(pipeline, D) - seen  # calls that ended in those 15 minutes
    assert ended
    meta = _metadata(pipeline.run_today(D), "calls_today")
    keys = _keys(pipeline, D)
    assert set(keys) == _truth(pipeline, D)
    assert len(keys) == len(set(keys))  # nothing doubled
    assert (meta["inserted"], meta["updated"], meta["unchanged"]) == (len(ended), 0, len(seen))
    assert meta["provisional"] is True
    # a tick that finds nothing new changes no row of any table, the day's status included
    before = pipeline.snapshot()
    assert before is not None
    assert len(before["calls_day_syncs"]) == 2
    pipeline.run_today(D)
    assert pipeline.snapshot() == before
    # today's partition of `calls` is not materialized by the intra-day sync: it stays missing
    # until the daily run after the settle delay (what the freshness check asks about)
    assert D.isoformat() not in pipeline.instance.get_materialized_partitions(dg.AssetKey("calls"))


CALLER = "+2348031234567"  # Nigeria: foreign with no home country set


def wangiri_burst(first: datetime, n: int = 25) -> list[dict[str, Any]]:
    """`n` one-ring calls from CALLER to `n` numbers, 10 s apart (within two 5-minute buckets),
    unanswered after 3 s of ringing: the pattern wangiri_inbound exists for."""
    records = []
    for k in range(n):
        start = first + timedelta(seconds=10 * k)
        records.append(
            {
                "attempted_at": start.isoformat().replace("+00:00", "Z"),
                "account_sid": simmod.ACCOUNT_SID,
                "answered": False,
                "answered_at": "1970-01-01T00:00:00.000Z",
                "application_sid": None,
                "call_sid": f"wangiri-{k:03d}",
                "direction": "inbound",
                "duration": 0,
                "from": CALLER,
                "host": "10.0.0.1",
                "recording_url": None,
                "remote_host": "3.4.5.6",
                "service_provider_sid": None,
                "sip_callid": f"wangiri-{k}@10.0.0.2",
                "sip_parent_callid": None,
                "sip_status": 487,
                "terminated_at": (start + timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
                "termination_reason": "caller hungup",
                "to": f"1617555{k:04d}",
                "trace_id": "0" * 32,
                "trunk": "voxbone",
            }
        )
    return records


def _checks(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey(asset)
    }


def test_a_wangiri_burst_is_flagged_by_the_next_tick_and_again_by_the_nights_run(
    pipeline: Pipeline,
) -> None:
    """The fraud checks run on today's calls after each intra-day sync (as checks of
    calls_today, provisional), and on the day's final run (fraud_findings): the same group
    both times, so a notification sent in the afternoon is not sent again at night."""
    sim = pipeline.sim
    sim.set_clock(at(9))
    pipeline.run_today(D)  # the morning so far: no burst
    assert (
        not _checks(pipeline.run_today(D), "calls_today")["wangiri_inbound"]
        .metadata["flagged"]
        .value
    )
    sim.add_records(wangiri_burst(at(9, 2)))
    sim.set_clock(at(9, 15))
    checks = _checks(pipeline.run_today(D), "calls_today")
    wangiri = checks["wangiri_inbound"]
    meta = {k: getattr(v, "value", v) for k, v in wangiri.metadata.items()}
    assert not wangiri.passed
    assert wangiri.severity == dg.AssetCheckSeverity.WARN
    assert (meta["day"], meta["provisional"]) == (D.isoformat(), True)
    (flagged,) = meta["flagged"]
    assert (flagged["group"], flagged["country"], flagged["attempts"]) == (CALLER, "NG", 25)
    assert (flagged["distinct_called"], flagged["unanswered_share"]) == (25, 1.0)
    assert set(checks) == {
        "wangiri_inbound",
        "irsf_destination",
        "short_call_dialer",
        "acd_collapse",
    }
    assert (checks["short_call_dialer"].passed, checks["acd_collapse"].passed) == (True, True)

    sim.set_clock(at(2, day=D + timedelta(days=1)))  # the night's run of the settled day
    night = pipeline.run_day(D)
    assert night.success
    final = _checks(night, "fraud_findings")["wangiri_inbound"]
    assert not final.passed
    assert [f["group"] for f in final.metadata["flagged"].value] == [CALLER]
    with pipeline.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT group_key, figures ->> 'country', complete FROM fraud_findings "
            "WHERE day = $day AND check_name = 'wangiri_inbound'",
            {"day": D},
        ).fetchall()
    assert rows == [(CALLER, "NG", True)]


def test_a_long_call_appears_once_it_ends_in_the_day_it_was_attempted(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    midnight = at(0, day=D + timedelta(days=1))
    sim.set_clock(at(1, day=D + timedelta(days=1)))  # the day settled: every call of D ended
    crossing = [r for r in pipeline.truth(D) if str(r["terminated_at"]) >= midnight.isoformat()]
    assert crossing, "the seed gives no call of D that runs past midnight"
    call = min(crossing, key=lambda r: str(r["terminated_at"]))
    key = record_identity(call)

    sim.set_clock(at(23, 45))  # the call is in progress: jambonz has not written it
    assert str(call["attempted_at"]) < at(23, 45).isoformat()
    pipeline.run_today(D)
    assert key not in _keys(pipeline, D)

    # past midnight: the call ended and jambonz wrote it, stamped with its attempt on D. The
    # intra-day sync is now of the new day, whose window does not hold it.
    ended = datetime.fromisoformat(str(call["terminated_at"]).replace("Z", "+00:00"))
    sim.set_clock(ended + timedelta(minutes=5))
    pipeline.run_today(D + timedelta(days=1))
    assert key not in _keys(pipeline, D)

    sim.set_clock(at(1, day=D + timedelta(days=1)))  # the daily run, SYNC_SETTLE_MINUTES after
    assert pipeline.run_day(D).success
    assert key in _keys(pipeline, D)
    with pipeline.connect(read_only=True) as con:
        ((attempted,),) = con.execute(
            "SELECT CAST(timezone('UTC', attempted_at) AS DATE) FROM calls WHERE call_key = $k",
            {"k": key},
        ).fetchall()
    assert attempted == D


def _twin(pipeline: Pipeline, tmp_path: Path, request: pytest.FixtureRequest) -> Pipeline:
    """The same simulator and settings, writing a fresh warehouse of the same lane."""
    lake = None
    if pipeline.lake is not None:
        postgres = request.getfixturevalue("postgres")
        name = database_name(request.node.nodeid + "-twin")
        lake = new_lake(postgres, name, tmp_path / "twin-data")
    path = tmp_path / "twin.duckdb"
    env = {**pipeline.env, "WAREHOUSE_PATH": str(path)}
    env = {k: v for k, v in env.items() if k not in ("WAREHOUSE_URL", "WAREHOUSE_DATA_PATH")}
    settings = load_settings({**env, **lake_env(lake)})
    return Pipeline(
        pipeline.sim, env, path, settings, build_definitions(settings), pipeline.instance, lake
    )


def _day_rows(pipeline: Pipeline, day: date) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the warehouse holds of `day`, but the instants of the syncs themselves."""
    start, end = at(0, day=day), at(0, day=day + timedelta(days=1))
    queries = {
        "calls": "SELECT * EXCLUDE (synced_at) FROM calls "
        "WHERE attempted_at >= $start AND attempted_at < $end",
        "calls_raw": "SELECT * EXCLUDE (synced_at) FROM calls_raw "
        "WHERE attempted_at >= $start AND attempted_at < $end",
        "calls_quarantine": "SELECT * EXCLUDE (quarantined_at, payload) FROM calls_quarantine",
        # the day's status; not how many syncs brought it something, nor when the last one ran
        "calls_days": "SELECT * EXCLUDE (changes, last_change_at) FROM calls_days WHERE day = $day",
        **{name: f"SELECT * FROM {name} WHERE day = $day" for name in CALL_MODELS},  # noqa: S608
    }
    params = {"start": start, "end": end, "day": day}
    with pipeline.connect(read_only=True) as con:
        return {
            table: sorted(
                con.execute(
                    query, {k: v for k, v in params.items() if f"${k}" in query}
                ).fetchall(),
                key=repr,
            )
            for table, query in queries.items()
        }


def test_the_final_run_leaves_what_one_run_after_the_settle_delay_would(
    pipeline: Pipeline, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sim = pipeline.sim
    for hour, minute in ((6, 0), (12, 0), (18, 0), (23, 45)):
        sim.set_clock(at(hour, minute))
        pipeline.run_today(D)
    sim.set_clock(at(1, day=D + timedelta(days=1)))
    assert pipeline.run_day(D).success
    single = _twin(pipeline, tmp_path, request)
    assert single.run_day(D).success
    after_ticks, alone = _day_rows(pipeline, D), _day_rows(single, D)
    assert after_ticks["calls"], "the day is empty: the comparison would prove nothing"
    ((day, complete, *_),) = after_ticks["calls_days"]
    assert (day, complete) == (D, True)
    assert after_ticks == alone


def test_the_models_of_the_open_day_say_provisional_then_complete(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    sim.set_clock(at(12))
    result = pipeline.run_today(D)
    meta = _metadata(result, "calls_today")
    assert all(meta[f"{name}_rows"] > 0 for name in CALL_MODELS)
    assert _complete(pipeline, D) == {"calls_days": {False}, **{n: {False} for n in CALL_MODELS}}

    # an hour after midnight is the settle delay (SYNC_SETTLE_MINUTES=60): not a second before
    sim.set_clock(at(0, 59, day=D + timedelta(days=1)))
    early = pipeline.run_day(D)
    assert _metadata(early, "calls")["provisional"] is True
    assert _complete(pipeline, D)["calls_days"] == {False}

    sim.set_clock(at(1, day=D + timedelta(days=1)))
    final = pipeline.run_day(D)
    assert _metadata(final, "calls")["provisional"] is False
    assert all(_metadata(final, name)["complete"] is True for name in CALL_MODELS)
    assert _complete(pipeline, D) == {"calls_days": {True}, **{n: {True} for n in CALL_MODELS}}


def test_a_day_that_is_not_a_date_is_refused_before_any_request(pipeline: Pipeline) -> None:
    result = pipeline.defs.resolve_job_def(JOB).execute_in_process(
        instance=pipeline.instance,
        run_config={"ops": {"calls_today": {"config": {"day": "26/11/2026"}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "day='26/11/2026' is not YYYY-MM-DD" in str(failure.step_failure_data.error)
    assert pipeline.sim.request_log == []
    assert not pipeline.written()


def _wait_for_run(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus, *, timeout_s: float = 120
) -> dg.DagsterRun:
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(job_name=JOB, statuses=[status]))
        if runs:
            return runs[0]
        clock.sleep(0.05)  # polling the run's state, with a deadline
    raise AssertionError(f"no {JOB} run reached {status} in {timeout_s} s")


def test_a_tick_while_the_previous_sync_runs_is_skipped_and_says_why(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    sim.set_clock(at(9))
    assert isinstance(request := tick(pipeline.instance, at(9), "UTC"), dg.RunRequest)
    assert request.tags["jambonz/day"] == D.isoformat()
    assert request.run_config == {"ops": {"calls_today": {"config": {"day": D.isoformat()}}}}

    sim.hold()  # the sync's requests wait: the run stays in progress
    runner = threading.Thread(target=pipeline.run_today, args=(D,))
    runner.start()
    try:
        running = _wait_for_run(pipeline.instance, dg.DagsterRunStatus.STARTED)
        skipped = tick(pipeline.instance, at(9, 15), "UTC")
    finally:
        sim.release()
        runner.join(timeout=300)
    assert isinstance(skipped, dg.SkipReason)
    assert running.run_id[:8] in str(skipped.skip_message)
    assert D.isoformat() in str(skipped.skip_message)
    assert "still running" in str(skipped.skip_message)
    # the previous sync ended: the next tick asks again, for the local day of the tick
    _wait_for_run(pipeline.instance, dg.DagsterRunStatus.SUCCESS)
    later = tick(pipeline.instance, at(3, day=D + timedelta(days=1)), "America/New_York")
    assert isinstance(later, dg.RunRequest)
    assert later.tags["jambonz/day"] == D.isoformat()  # 22:00 the evening before in New York


def test_the_intraday_sync_keeps_the_rate_limit_reserve(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    sim.set_clock(at(12))
    limit, reserve, others = 10, 2, 7  # the reserve: JAMBONZ_RATE_LIMIT_RESERVE's 0.2 of 10
    sim.set_rate_limit(limit, 2.0)
    sim.consume(others)  # the operator's web UI spent most of the bucket
    meta = _metadata(pipeline.run_today(D), "calls_today")
    assert set(_keys(pipeline, D)) == _truth(pipeline, D)
    log = sim.request_log
    # more requests than the bucket had left above the reserve: the sync waited for the reset
    assert len(log) == meta["requests"] > limit - others - reserve
    assert sim.count_429 == 0
    # ...and never dipped into the reserve; whether it had to sleep for that depends on how
    # fast this machine reached the bucket's reset, so it is not asserted
    assert min(e["remaining"] for e in log) >= reserve


def _skipped_ticks(instance: dg.DagsterInstance) -> list[tuple[float, str]]:
    """(when, why) of the sensor's skipped ticks so far, as the UI's sensor page lists them."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    state = next((s for s in states if s.instigator_name == SENSOR), None)
    if state is None:
        return []
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    return [(t.timestamp, str(t.skip_reason)) for t in ticks if t.status == TickStatus.SKIPPED]


def midday_zone(now: datetime) -> str:
    """An IANA zone (Etc/GMT-N is UTC+N) whose local time at `now` is between 11:00 and 13:00:
    today's calls of the last minutes are in one local day whenever the test runs."""
    offset = 12 - now.hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.mark.process
@pytest.mark.timeout(420)
def test_the_daemon_runs_the_sensor_once_turned_on_and_skips_a_tick_while_it_syncs(
    tmp_path: Path,
) -> None:
    """The real CLI and daemon: `dagster sensor start`, then the daemon's first tick syncs today
    (by the machine's clock, which the simulator follows here). The simulator holds that sync's
    requests until the next tick, a minute later, has been skipped and said why. The day holds
    a Wangiri burst: the daemon's `notify` sensor (on by default) posts its finding to
    NOTIFY_URLS within a minute of the sync that found it, which only the daemon's own ticks,
    in a process of their own beside the run's, can show."""
    now = datetime.now(UTC)
    zone = midday_zone(now)
    with Simulator(seed=7, calls_per_day=2000) as sim, closing(Receiver()) as receiver:
        sim.add_records(wangiri_burst(now - timedelta(minutes=5)))
        env, home = cli_env(
            sim,
            tmp_path,
            SYNC_INTRADAY_MINUTES="1",
            PARTITIONS_TIMEZONE=zone,
            NOTIFY_URLS=receiver.url,
        )
        start = subprocess.run(
            [str(BIN / "dagster"), "sensor", "start", SENSOR, *MODULE],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]
        sim.hold()
        with (
            running_daemon(env, home, tmp_path / "daemon.log"),
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            try:
                held = _wait_for_run(instance, dg.DagsterRunStatus.STARTED, timeout_s=180)
                deadline = clock.monotonic() + 180
                while not any(held.run_id[:8] in r for _, r in _skipped_ticks(instance)):
                    assert clock.monotonic() < deadline, "no tick was skipped in 180 s"
                    clock.sleep(0.5)  # polling the tick history, with a deadline
            finally:
                sim.release()
            run = _wait_for_run(instance, dg.DagsterRunStatus.SUCCESS, timeout_s=180)
            ended = instance.get_run_record_by_id(run.run_id)
            assert ended is not None
            assert ended.end_time is not None
            told = _wangiri_post(receiver, ended.end_time + 60)
            ((skipped_at, reason), *_) = [
                (t, r) for t, r in _skipped_ticks(instance) if held.run_id[:8] in r
            ]
            records = instance.get_run_records(dg.RunsFilter(job_name=JOB))
        today = local_day(now, zone)
        with Warehouse(load_settings(env).warehouse_target, read_only=True) as wh:
            keys = [k for (k,) in wh.con.execute("SELECT call_key FROM calls").fetchall()]
            status = wh.con.execute("SELECT day, complete FROM calls_days").fetchall()
    assert run.run_id == held.run_id
    assert "still running" in reason
    assert run.tags["jambonz/sync"] == "intraday"
    assert run.tags["dagster/sensor_name"] == SENSOR
    assert run.tags["jambonz/day"] == today.isoformat()
    assert run.tags["jambonz/day"] in reason
    # the skipped tick launched nothing: up to it, the held run is the job's only run
    before = [r.dagster_run.run_id for r in records if r.create_timestamp.timestamp() < skipped_at]
    assert before == [held.run_id]
    assert keys
    assert len(keys) == len(set(keys))  # nothing doubled
    assert status == [(today, False)]
    assert (
        told["title"] == f"wangiri_inbound flagged 1 group on {today} (provisional: today so far)"
    )
    assert f"- {CALLER}: attempts 25," in told["message"]
    assert "calls_today" in told["message"]
    # the URL's secret: in no log line of the daemon, no file of the instance, not the warehouse
    files = [tmp_path / "daemon.log", tmp_path / "warehouse.duckdb"]
    files += [f for f in home.rglob("*") if f.is_file()]
    assert [f for f in files if SECRET.encode() in f.read_bytes()] == []


def _wangiri_post(receiver: Receiver, by: float) -> dict[str, Any]:
    """The first message about wangiri_inbound the receiver gets before the wall-clock instant
    `by` (other messages, such as irsf_destination's, are passed over); fails after it."""
    while (left := by - clock.time()) > 0:
        try:
            _, _, body = receiver.posts.get(timeout=left)
        except queue.Empty:
            break
        if body["title"].startswith("wangiri_inbound"):
            return body
    raise AssertionError("no wangiri_inbound message within 60 s of the run that found it")
