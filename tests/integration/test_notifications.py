"""NOTIFY_URLS: findings and failed runs reach a real receiver through apprise, once, and no secret
leaks.

In process: a Dagster instance on SQLite in a temp folder (the storage Dagster's daemon uses by
default, which keeps each run's events apart), tiny assets whose checks report WARN findings in
the checks' metadata contract (`day`, `flagged`, `provisional`) through `dg.materialize`, and the
`notify` sensor's own function evaluated on that instance, tick by tick, as the daemon would. The
receiver is an HTTP server on 127.0.0.1 reached by apprise's JSON plugin (`json://`), with a
secret in its path, as Slack's and most webhooks carry theirs.
"""

import json
import logging
import queue
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.notify import (
    DAGSTER_WEBSERVER_URL,
    KEEP_DAYS,
    NOTIFY_SENSOR,
    build_notify_sensor,
)
from pipelines.outbox import NOTIFY_URLS
from pipelines.settings import load_settings
from tests.e2e.conftest import clean_env

__all__ = ["clean_env"]  # the fixture, for test_the_notify_sensor_is_on_by_default

SECRET = "s3cr3t-token-Zx41-DISTINCTIVE"
UI = "http://dagster.example:3000"
# the sensor forgets days more than KEEP_DAYS back by the real clock: the days are relative to it
TODAY = datetime.now(UTC).date().isoformat()
DAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

Post = tuple[int, str, dict[str, Any]]  # the status answered, the path, the JSON body


class Receiver:
    """A webhook on 127.0.0.1 recording every POST; answers `statuses` in turn, then 200. It can
    stop (its port then refuses connections) and start again on the same port."""

    def __init__(self) -> None:
        self.posts: queue.Queue[Post] = queue.Queue()
        self.statuses: list[int] = []
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self, *statuses: int) -> None:
        self.statuses[:] = statuses
        posts, answers = self.posts, self.statuses

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = answers.pop(0) if answers else 200
                posts.put((status, self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the secret path

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:  # contextlib.closing's
        self.stop()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/{SECRET}"

    def received(self) -> list[Post]:
        """Every POST so far not yet taken (the sensor's tick sent them before it returned)."""
        got = []
        while not self.posts.empty():
            got.append(self.posts.get_nowait())
        return got


class Sensor:
    """The `notify` sensor evaluated on `instance` as the daemon would: each tick gets the cursor
    the previous one returned."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.definition = build_notify_sensor()
        self.cursor: str | None = None
        self.cursors: list[str] = []
        self.reasons: list[str] = []

    def tick(self) -> str:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        result = self.definition(context)
        assert isinstance(result, dg.SensorResult)
        assert not result.run_requests
        assert result.cursor is not None
        assert result.skip_reason is not None
        self.cursor = result.cursor
        self.cursors.append(result.cursor)
        self.reasons.append(result.skip_reason.skip_message or "")
        return self.reasons[-1]


class Flags(dg.Config):
    day: str = DAY
    flagged: str = "{}"  # JSON: check name -> its flagged objects (none: the check passes)
    provisional: bool = False


def checks_asset(name: str, *checks: str, during: Any = None) -> dg.AssetsDefinition:
    """An asset `name` with the WARN checks `checks` (only those a test uses: each costs a run
    time), each reporting the flagged objects `Flags` gives it; `during(context)` runs after the
    checks' results are logged, while the run is still in progress."""

    @dg.asset(name=name, check_specs=[dg.AssetCheckSpec(c, asset=name) for c in checks])
    def _asset(context: dg.AssetExecutionContext, config: Flags) -> Iterator[Any]:
        flagged = json.loads(config.flagged)
        yield dg.MaterializeResult()
        for check in checks:
            groups = flagged.get(check, [])
            yield dg.AssetCheckResult(
                check_name=check,
                passed=not groups,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "day": config.day,
                    "flagged": dg.MetadataValue.json(groups),
                    "provisional": config.provisional,
                },
            )
        if during is not None:
            during(context)

    return _asset


@dg.asset(name="calls")
def failing_calls() -> None:
    raise RuntimeError("jambonz refused the API key (401 Unauthorized): check JAMBONZ_API_KEY")


def run(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, **flagged: list[dict[str, Any]]
) -> dg.ExecuteInProcessResult:
    config = Flags(flagged=json.dumps(flagged))
    return _materialize(instance, asset, config)


def _materialize(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, config: Flags
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [asset],
        instance=instance,
        run_config=dg.RunConfig(ops={asset.key.path[-1]: config}),
        raise_on_error=False,
    )
    assert result.success
    return result


def wangiri(number: str, attempts: int = 42) -> dict[str, Any]:
    return {
        "group": number,
        "number": number,
        "country": "GB",
        "attempts": attempts,
        "distinct_called": 30,
        "unanswered_share": 0.95,
        "short_ring_share": 0.9166666666666666,
        "busiest_bucket": 5920000,
        "busiest_bucket_start": f"{DAY}T10:40:00Z",
        "busiest_bucket_attempts": 14,
        "callbacks": 2,
    }


IRSF = {
    "group": "AC-1/001",
    "account_sid": "AC-1",
    "country": "001",
    "rule": "high_risk",
    "attempts": 7,
    "answered": 3,
    "answered_seconds": 612.5,
    "cost": None,
    "distinct_called": 4,
    "top_prefixes": ["882345", "881612"],
}


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Every line logged so far: Python's loggers (caplog) and Dagster's, which a sensor's
    `context.log` and a run write to the console (stdout, stderr) without propagating."""
    out, err = capfd.readouterr()
    sys.stdout.write(out)  # kept for pytest's report of a failure
    sys.stderr.write(err)
    return "\n".join([caplog.text, out, err])


def no_secret_anywhere(
    tmp_path: Path, instance: dg.DagsterInstance, sensor: Sensor, log: str
) -> None:
    """The secret is in no log line, cursor, skip reason, event, run record or instance file."""
    events = [
        dg.serialize_value(entry)
        for record in instance.get_run_records()
        for entry in instance.all_logs(record.dagster_run.run_id)
    ]
    runs = [dg.serialize_value(r.dagster_run) for r in instance.get_run_records()]
    for where, text in {
        "log": log,
        "cursors": "\n".join(sensor.cursors),
        "skip reasons": "\n".join(sensor.reasons),
        "events": "\n".join(events),
        "runs": "\n".join(runs),
    }.items():
        assert SECRET not in text, f"the secret in the {where}"
        assert "/hooks/" not in text, f"the URL's path in the {where}"
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the secret in {path}"


def test_each_finding_is_sent_once_per_check_day_and_group_with_its_figures(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every line urllib3 and apprise could write, too
    monkeypatch.setenv(NOTIFY_URLS, receiver.url)
    monkeypatch.setenv(DAGSTER_WEBSERVER_URL, UI + "/")
    sensor = Sensor(instance)
    fraud_findings = checks_asset(
        "fraud_findings", "wangiri_inbound", "irsf_destination", "not_notified"
    )
    assert sensor.tick().startswith("first tick")

    # The first night: two checks flag groups; a check not notified fails too.
    run(
        instance,
        fraud_findings,
        wangiri_inbound=[wangiri("+447400123456"), wangiri("+447400999888", attempts=25)],
        irsf_destination=[IRSF],
        not_notified=[{"group": "x"}],
    )
    assert "2 new message(s) for 1 target(s); 2 sent" in sensor.tick()
    posts = receiver.received()
    assert [(status, path) for status, path, _ in posts] == [(200, f"/hooks/{SECRET}")] * 2
    first, second = (body for _, _, body in posts)
    assert first["type"] == "warning"
    assert first["title"] == f"wangiri_inbound flagged 2 groups on {DAY}"
    lines = first["message"].splitlines()
    assert lines[0].startswith(f"wangiri_inbound on {DAY}: 2 new groups flagged, by fraud_findings")
    assert lines[1] == (
        "- +447400123456: attempts 42, busiest_bucket 5920000, busiest_bucket_attempts 14, "
        f"busiest_bucket_start {DAY}T10:40:00Z, callbacks 2, country GB, distinct_called 30, "
        "number +447400123456, short_ring_share 0.917, unanswered_share 0.95"
    )
    assert lines[2].startswith("- +447400999888: attempts 25, busiest_bucket 5920000,")
    assert lines[3] == f"Check: {UI}/assets/fraud_findings?view=checks&checkDetail=wangiri_inbound"
    assert lines[4].startswith(f"Run: {UI}/runs/")
    assert second["title"] == f"irsf_destination flagged 1 group on {DAY}"
    assert (
        "- AC-1/001: account_sid AC-1, answered 3, answered_seconds 612.5, attempts 7, cost none, "
        "country 001, distinct_called 4, rule high_risk, top_prefixes [882345, 881612]"
    ) in second["message"]

    # A re-run that flags the same groups sends nothing; one that flags another sends that one.
    run(
        instance,
        fraud_findings,
        wangiri_inbound=[wangiri("+447400123456")],
        irsf_destination=[IRSF],
    )
    assert sensor.tick().startswith("0 new message(s)")
    assert receiver.received() == []
    run(
        instance,
        fraud_findings,
        wangiri_inbound=[wangiri("+447400123456"), wangiri("+447400555000")],
        irsf_destination=[IRSF],
    )
    sensor.tick()
    [(_, _, third)] = receiver.received()
    assert third["title"] == f"wangiri_inbound flagged 1 group on {DAY}"
    assert "1 new group flagged (2 in all; the others were sent before)" in third["message"]
    assert "- +447400555000:" in third["message"]
    assert "+447400123456" not in third["message"]

    # Today, provisionally: the intra-day run's finding is sent while that run still runs (its
    # evaluation is read before the run ends), and the night's run does not send it again.
    during: list[list[Post]] = []

    def tick_mid_run(context: dg.AssetExecutionContext) -> None:
        assert (
            context.instance.get_run_by_id(context.run.run_id).status == dg.DagsterRunStatus.STARTED
        )
        sensor.tick()
        during.append(receiver.received())

    calls_today = checks_asset("calls_today", "wangiri_inbound", during=tick_mid_run)
    _materialize(
        instance,
        calls_today,
        Flags(
            day=TODAY,
            flagged=json.dumps({"wangiri_inbound": [wangiri("+3225550000")]}),
            provisional=True,
        ),
    )
    [[(_, _, provisional)]] = during
    assert (
        provisional["title"]
        == f"wangiri_inbound flagged 1 group on {TODAY} (provisional: today so far)"
    )
    assert "Provisional: today's calls so far" in provisional["message"]
    assert (
        f"{UI}/assets/calls_today?view=checks&checkDetail=wangiri_inbound" in provisional["message"]
    )
    sensor.tick()  # the intra-day run's end: nothing more
    assert receiver.received() == []
    _materialize(
        instance,
        fraud_findings,
        Flags(
            day=TODAY,
            flagged=json.dumps(
                {"wangiri_inbound": [wangiri("+3225550000"), wangiri("+3225551111")]}
            ),
        ),
    )
    sensor.tick()
    [(_, _, night)] = receiver.received()
    assert "- +3225551111:" in night["message"]
    assert "+3225550000" not in night["message"]
    assert "(provisional" not in night["title"]

    cursor = json.loads(sensor.cursor or "")
    assert cursor["sent"][TODAY] == {"wangiri_inbound": ["+3225550000", "+3225551111"]}
    assert cursor["running"] == {}
    assert cursor["outboxes"] == {}
    no_secret_anywhere(tmp_path, instance, sensor, logged(caplog, capfd))


def test_a_target_down_or_answering_503_or_429_gets_it_later_and_a_404_drops_it(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(NOTIFY_URLS, receiver.url)
    monkeypatch.delenv(DAGSTER_WEBSERVER_URL, raising=False)
    sensor = Sensor(instance)
    sensor.tick()
    fraud_findings = checks_asset("fraud_findings", "acd_collapse", "short_call_dialer")

    # While the receiver is down: a finding, then a failed run; both wait in the outbox.
    receiver.stop()
    run(instance, fraud_findings, acd_collapse=[{"group": "twilio/outbound", "acd_s": 21.4}])
    failed = dg.materialize([failing_calls], instance=instance, raise_on_error=False)
    assert not failed.success
    reason = sensor.tick()
    assert "2 new message(s) for 1 target(s); 0 sent, 0 dropped, 2 waiting" in reason
    assert f"target 1 (JSON): acd_collapse {DAY} not delivered (unreachable" in reason
    assert len(json.loads(sensor.cursor or "")["outboxes"]) == 1

    # Up again, answering 503 then 429: each tick tries the first message once; then both go,
    # in the order they happened.
    receiver.start(503, 429)
    assert "answered 503" in sensor.tick()
    assert "answered 429" in sensor.tick()
    assert "0 new message(s) for 1 target(s); 2 sent, 0 dropped, 0 waiting" in sensor.tick()
    posts = receiver.received()
    assert [status for status, _, _ in posts] == [503, 429, 200, 200]
    assert posts[0][2] == posts[1][2] == posts[2][2]
    assert posts[2][2]["title"] == f"acd_collapse flagged 1 group on {DAY}"
    assert "- twilio/outbound: acd_s 21.4" in posts[2][2]["message"]
    alert = posts[3][2]
    assert alert["type"] == "failure"
    assert alert["title"] == "Dagster run failed: job __ephemeral_asset_job__, partition (none)"
    assert alert["message"] == (
        f"Dagster run failed: job __ephemeral_asset_job__, partition (none), run {failed.run_id}: "
        "jambonz refused the API key (401 Unauthorized): check JAMBONZ_API_KEY"
    )
    sensor.tick()
    assert receiver.received() == []

    # A 404 cannot succeed by retrying: dropped and logged, not tried again.
    receiver.statuses[:] = [404]
    run(instance, fraud_findings, short_call_dialer=[{"group": "AC-1/+15085550100"}])
    reason = sensor.tick()
    assert "1 new message(s) for 1 target(s); 0 sent, 1 dropped, 0 waiting" in reason
    [(status, _, _)] = receiver.received()
    assert status == 404
    log = logged(caplog, capfd)
    assert f"target 1 (JSON): short_call_dialer {DAY} answered 404, dropped" in log
    assert "check entry 1 of NOTIFY_URLS" in log
    sensor.tick()
    assert receiver.received() == []
    no_secret_anywhere(tmp_path, instance, sensor, log + logged(caplog, capfd))


def test_unset_or_unusable_urls_and_days_long_past_send_nothing_saying_why(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    sensor = Sensor(instance)
    monkeypatch.delenv(NOTIFY_URLS, raising=False)
    monkeypatch.delenv(DAGSTER_WEBSERVER_URL, raising=False)
    assert sensor.tick().startswith("NOTIFY_URLS is not set: no finding or failed run is sent")
    monkeypatch.setenv(NOTIFY_URLS, f"bogus://{SECRET} , nope://h/{SECRET}")
    reason = sensor.tick()
    assert reason.startswith("NOTIFY_URLS has no URL apprise can use")
    assert "entry 1 of 2 is not a URL apprise can use" in reason
    assert "entry 2 of 2 is not a URL apprise can use" in reason
    # one usable, one not: the usable one gets the messages, the other is named by its position
    monkeypatch.setenv(NOTIFY_URLS, f"{receiver.url} bogus://{SECRET}")
    sensor.tick()  # its first tick with somewhere to send
    trunk_kpis_daily = checks_asset("trunk_kpis_daily", "asr_drop")
    run(instance, trunk_kpis_daily, asr_drop=[{"group": "AC-1/outbound/twilio"}])
    reason = sensor.tick()
    assert "1 sent" in reason
    assert "NOTIFY_URLS: entry 2 of 2 is not a URL apprise can use" in reason
    [(_, _, body)] = receiver.received()
    assert body["title"] == f"asr_drop flagged 1 group on {DAY}"
    assert "Check:" not in body["message"]  # no DAGSTER_WEBSERVER_URL, no link
    # a day older than the groups remembered (a backfill) is not sent: it could not be deduped
    long_ago = (datetime.now(UTC).date() - timedelta(days=KEEP_DAYS + 1)).isoformat()
    flagged = json.dumps({"asr_drop": [{"group": "AC-1/outbound/twilio"}]})
    _materialize(instance, trunk_kpis_daily, Flags(day=long_ago, flagged=flagged))
    assert sensor.tick().startswith("0 new message(s)")
    assert receiver.received() == []
    log = logged(caplog, capfd)
    assert f"asr_drop {long_ago} (run " in log
    assert f"not sent, the day is older than the {KEEP_DAYS} days" in log
    no_secret_anywhere(tmp_path, instance, sensor, log)


def test_the_notify_sensor_is_on_by_default(clean_env: None) -> None:
    defs = build_definitions(load_settings({}))
    sensor = defs.resolve_sensor_def(NOTIFY_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds is not None
    assert sensor.minimum_interval_seconds <= 20  # sent within 60 s while the daemon runs
