"""A failed run posts one alert to ALERT_WEBHOOK_URL, a good run posts none, and no secret leaks.

Real parts only: the simulator over HTTP, `dagster-daemon run` in a DAGSTER_HOME holding the
repository's dagster.yaml (the daemon runs the sensor, on by default), `dagster asset materialize`
CLI runs, and an HTTP server on loopback standing in for Slack. The receiver answers the first
POST 503, so the alert only arrives through the retry on the sensor's next tick. The webhook URL
carries a secret in its path, as Slack's do; the failing run uses a distinctive wrong API key.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.notify import (
    ALERT_WEBHOOK_URL,
    SENSOR_NAME,
    AlertNotDelivered,
    AlertRejected,
    post_alert,
)
from pipelines.settings import load_settings
from tests.conftest import NOW
from tests.e2e.conftest import cli_env, materialize, running_daemon

GOOD_DAY = (NOW.date() - timedelta(days=3)).isoformat()
BAD_DAY = (NOW.date() - timedelta(days=2)).isoformat()
WRONG_KEY = "wrong-key-Alert-5f3e-DISTINCTIVE"
HOOK_SECRET = "hook-secret-Kq81-DISTINCTIVE"
SECRETS = (HOOK_SECRET, WRONG_KEY, simmod.ACCOUNT_KEY)

Post = tuple[int, dict[str, Any]]  # the status the receiver answered, the JSON body


class Receiver:
    """A webhook on 127.0.0.1 recording every POSTed JSON body; answers `statuses` in turn, then
    200 (Slack answers `ok`)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.posts: queue.Queue[Post] = queue.Queue()
        answers = list(statuses)
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = answers.pop(0) if answers else 200
                posts.put((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the secret path

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/{HOOK_SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait_until(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.5)  # polling a condition with a deadline, not synchronizing on time


def _sensor_state(instance: dg.DagsterInstance) -> Any:
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return next((s for s in states if s.instigator_name == SENSOR_NAME), None)


def _run(env: dict[str, str], home: Path, day: str) -> str:
    proc = materialize(env, home, day)
    out, _ = proc.communicate(timeout=120)
    return f"exit {proc.returncode}\n{out}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(statuses=(503,)) as r:
        yield r


@pytest.mark.process
@pytest.mark.timeout(240)
def test_a_failed_run_posts_one_alert_and_a_good_run_none(
    simulator: Simulator, receiver: Receiver, tmp_path: Path
) -> None:
    """The daemon's run-failure sensor posts to the webhook: sensors are evaluated by the daemon
    process only, on runs that CLI processes recorded in the instance."""
    env, home = cli_env(simulator, tmp_path, **{ALERT_WEBHOOK_URL: receiver.url})
    log_path = tmp_path / "daemon.log"
    with (
        running_daemon(env, home, log_path),
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        # The sensor's first tick sets its cursor after every failure so far; runs come after.
        def initialized() -> bool:
            state = _sensor_state(instance)
            return bool(state and state.instigator_data and state.instigator_data.cursor)

        _wait_until("the alert sensor's first tick", initialized, timeout_s=90)
        good = _run(env, home, GOOD_DAY)
        assert good.startswith("exit 0"), good[-3000:]
        bad = _run({**env, "JAMBONZ_API_KEY": WRONG_KEY}, home, BAD_DAY)
        assert not bad.startswith("exit 0"), bad[-3000:]
        first = receiver.posts.get(timeout=60)  # answered 503: the tick fails, cursor stays
        second = receiver.posts.get(timeout=60)  # the next tick posts it again
        runs = {
            r.tags["dagster/partition"]: r
            for r in instance.get_runs()
            if "dagster/partition" in r.tags  # not the freshness sensor's check runs
        }
        failed_id = runs[BAD_DAY].run_id

        def delivered_tick() -> bool:
            state = _sensor_state(instance)
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
            return any(
                t.status == TickStatus.SUCCESS and failed_id in t.origin_run_ids for t in ticks
            )

        # The tick that posted it finishes after the POST: wait for it to be written.
        _wait_until("the tick that delivered the alert", delivered_tick, timeout_s=60)
        state = _sensor_state(instance)
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
        events = "\n".join(
            dg.serialize_value(entry)
            for run in runs.values()
            for entry in instance.all_logs(run.run_id)
        )

    assert runs[GOOD_DAY].status == dg.DagsterRunStatus.SUCCESS
    failed = runs[BAD_DAY]
    assert failed.status == dg.DagsterRunStatus.FAILURE
    # Exactly the failed run's alert, twice (503, then delivered); the good run posted nothing.
    assert receiver.posts.empty()
    assert [status for status, _ in (first, second)] == [503, 200]
    assert first[1] == second[1]
    body = second[1]
    assert body["run_id"] == failed.run_id
    assert body["partition"] == BAD_DAY
    assert body["job"] == failed.job_name
    assert body["status"] == "FAILURE"
    assert body["run_path"] == f"/runs/{failed.run_id}"
    assert body["will_retry"] is False
    assert "401" in body["error"]
    assert "JAMBONZ_API_KEY" in body["error"]
    text = body["text"]
    assert "\n" not in text
    for fact in (failed.job_name, BAD_DAY, failed.run_id, "refused the API key", "JAMBONZ_API_KEY"):
        assert fact in text, text
    # The 503 failed a tick, saying why; the next tick delivered and Dagster noted it on the run.
    errors = [t.error.to_string() for t in ticks if t.status == TickStatus.FAILURE and t.error]
    assert any("not delivered" in e and "503" in e for e in errors), errors
    assert f"acted on run status FAILURE of run {failed.run_id}" in events
    # No secret in the bodies, the daemon's log, the runs' event logs, the CLI output, or any
    # file of the instance (run and event storage, ticks, compute and sensor logs).
    daemon_log = log_path.read_text()
    assert "not delivered" in daemon_log  # the warning/tick error is logged, without the URL
    for where, content in {
        "bodies": json.dumps([first, second]),
        "daemon log": daemon_log,
        "event logs": events,
        "cli output": good + bad,
    }.items():
        for secret in SECRETS:
            assert secret not in content, f"{secret} in {where}"
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, f"{secret} in {path}"


def test_a_refused_or_unreachable_webhook_raises_without_the_url(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    log = logging.getLogger("test_alerts")
    body = {"text": "t", "run_id": "r1"}
    with Receiver(statuses=(404, 500)) as r:
        monkeypatch.setenv(ALERT_WEBHOOK_URL, r.url)
        with pytest.raises(AlertRejected, match="404") as rejected:
            post_alert(r.url, body, log)
        with pytest.raises(AlertNotDelivered, match="500") as unavailable:
            post_alert(r.url, body, log)
        post_alert(r.url, body, log)
        assert [r.posts.get_nowait()[0] for _ in range(3)] == [404, 500, 200]
        dead = r.url.replace(str(r.server.server_port), "9")  # nothing listens: refused
    with pytest.raises(AlertNotDelivered, match="could not be reached") as unreachable:
        post_alert(dead, body, log)
    # The whole exception as Dagster would store it (chained causes included), and every log line.
    texts = ["".join(traceback.format_exception(e.value)) for e in (rejected, unreachable)]
    texts += [str(unavailable.value), caplog.text]
    assert "HTTP Request: POST" in caplog.text  # httpx's own line, its URL masked
    for text in texts:
        assert HOOK_SECRET not in text, text
        assert "/services/" not in text, text


def test_the_alert_sensor_is_on_by_default(clean_env: None) -> None:
    defs = build_definitions(load_settings({}))
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
