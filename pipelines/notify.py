"""Notifications: failed runs and fraud findings told where operators look.

Two sensors, both on by default (the daemon runs them, as `dg dev` does), both watching every run
of this Dagster instance, not only this code location's: a run of `dagster asset materialize`
carries no code-location origin. The instance (dagster.yaml) serves this one code location.

`run_failure_alert` POSTs a Slack-compatible JSON body (`alert_body`: a one-line `text` and the
same facts as fields) to `ALERT_WEBHOOK_URL` for each failed run. Unset: the sensor skips, saying
so, and the failure stays unalerted. A webhook that cannot be reached, times out, or answers 429
or 5xx: the tick fails with `AlertNotDelivered` without moving the sensor's cursor, so the next
tick (INTERVAL_S later) posts the alert again: at least once, an alert posted earlier in that
same tick may arrive twice. Any other non-2xx (a revoked or mistyped URL, a rejected body) cannot
succeed by retrying: the tick fails with `AlertRejected` and the sensor moves on.

`notify` sends to every target of `NOTIFY_URLS` (apprise URLs: Slack, Teams, PagerDuty, e-mail, a
JSON webhook; pipelines/outbox.py) a message per failed run (job, partition, run id, cause, as
the alert) and, per failed WARN evaluation of a check in `fraud.NOTIFIED_CHECKS` on any asset,
one message listing the groups it flagged that no earlier message named: once per (check, local
day, group), so a re-run that flags the same groups sends nothing and the night's run sends no
group the afternoon's intra-day run sent. What it reads of an evaluation (the contract with the
checks): metadata `day` ("YYYY-MM-DD"), `flagged` (JSON: a list of flat objects, each with a
string `group` beside its key fields and figures) and `provisional` (bool). It reads the check
evaluations of runs in progress, so a finding goes out within a tick or two of its evaluation,
and of runs that ended since its cursor (run-end events by storage id: Dagster's SQLite event
storage keeps each run's events apart, and the run-end events are the stream it indexes across
runs). At least once: a message a target did not take (unreachable, 429, 5xx) waits in that
target's outbox in the cursor for the next tick; other 4xx are logged and dropped. The cursor
(JSON) holds: the run-end storage id read up to, the event cursor of each run in progress, the
groups sent per day (the last KEEP_DAYS days; a finding about an older day is not sent), and
each target's outbox under a hash of its URL. Its first tick starts from the newest run end: what
ended before it is not sent. Neither sensor can fail a run: they only read what runs wrote.

Must never: put a webhook or apprise URL anywhere but the request it is sent with. Slack's carry
their token in the path, so they are read from the environment at each evaluation and are in no
run config, tag, log line, SkipReason, exception, cursor or posted body (httpx's own request log
line is masked; apprise's stay inside apprise). Must never add the jambonz API key, request
headers or environment variables to a message: the text is the run's failure message, which
never carries the key, and the checks' figures.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import dagster as dg
import httpx

from pipelines import outbox
from pipelines.fraud import NOTIFIED_CHECKS
from pipelines.outbox import NOTIFY_URLS, Message

ALERT_WEBHOOK_URL = "ALERT_WEBHOOK_URL"
SENSOR_NAME = "run_failure_alert"
TIMEOUT_S = 10.0
# A failure is posted within ~INTERVAL_S plus the daemon's loop; a failed post is retried as often.
INTERVAL_S = 15
# Slack shows about 40,000 characters of text; an alert is read at a glance.
TEXT_LIMIT = 500
ERROR_LIMIT = 3000
_WRAPPED = "DagsterExecutionStepExecutionError"


class AlertNotDelivered(dg.DagsterError):
    """The webhook was unreachable or answered 429/5xx: the tick fails and the next one retries.

    A DagsterError so that Dagster's run-status sensor lets it through (a plain exception would
    move the cursor past the run and drop its alert).
    """


class AlertRejected(RuntimeError):
    """The webhook refused the alert (a non-2xx other than 429/5xx): retrying cannot help."""


def failure_cause(context: dg.RunFailureSensorContext) -> str:
    """The first failed step's error message (without its exception class), else the run's."""
    return cause_of(context.get_step_failure_events(), context.failure_event.message)


def run_cause(instance: dg.DagsterInstance, run_id: str, run_message: str | None) -> str:
    """`failure_cause` for a failed run read from the instance, `run_message` its failure's."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    steps = [r.event_log_entry.dagster_event for r in records]
    return cause_of([e for e in steps if e is not None], run_message)


def cause_of(step_failures: Sequence[dg.DagsterEvent], run_message: str | None) -> str:
    for event in step_failures:
        error = event.step_failure_data.error
        # an exception other than dg.Failure comes wrapped ("Error occurred while executing op")
        while error is not None and error.cls_name == _WRAPPED and error.cause is not None:
            error = error.cause
        if error is None or not error.message.strip():
            continue
        message = error.message.strip()
        prefix, sep, rest = message.partition(": ")
        if sep and prefix.rsplit(".", 1)[-1] == error.cls_name:
            message = rest.strip()
        return message
    return run_message or "the run failed (no message)"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_body(run: dg.DagsterRun, cause: str) -> dict[str, Any]:
    """The JSON posted for a failed run: Slack's `text`, and the same facts as fields."""
    partition = run.tags.get("dagster/partition")
    if partition is None and "dagster/asset_partition_range_start" in run.tags:
        start = run.tags["dagster/asset_partition_range_start"]
        end = run.tags.get("dagster/asset_partition_range_end", "")
        partition = f"{start}...{end}"
    # Dagster sets this tag as the run fails: run retries (dagster.yaml) will launch it again.
    will_retry = run.tags.get("dagster/will_retry") == "true"
    first_line = cause.strip().splitlines()[0] if cause.strip() else "no message"
    text = (
        f"Dagster run failed: job {run.job_name}, partition {partition or '(none)'}, "
        f"run {run.run_id}{' (Dagster will retry it)' if will_retry else ''}: {first_line}"
    )
    return {
        "text": _clip(text, TEXT_LIMIT),
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": partition,
        "status": run.status.value,
        "error": _clip(cause, ERROR_LIMIT),
        "will_retry": will_retry,
        "run_path": f"/runs/{run.run_id}",
    }


class _MaskWebhookUrl(logging.Filter):
    """httpx logs each request's URL at INFO; the webhook's carries a secret, so it is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        raw = os.environ.get(ALERT_WEBHOOK_URL, "").strip()
        if raw and isinstance(record.args, tuple):
            secret = httpx.URL(raw)
            record.args = tuple(
                f"{ALERT_WEBHOOK_URL} ({secret.scheme}://{secret.host}/...)"
                if isinstance(arg, httpx.URL) and arg == secret
                else arg
                for arg in record.args
            )
        return True


def _mask_httpx_log() -> None:
    log = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskWebhookUrl) for f in log.filters):
        log.addFilter(_MaskWebhookUrl())


def post_alert(url: str, body: dict[str, Any], log: logging.Logger | dg.DagsterLogManager) -> None:
    """POST `body` to `url`; raise AlertNotDelivered (retry) or AlertRejected (give up).

    No message here names the URL: an httpx error (its message includes the URL) is reported by
    its class name only and is never chained; a response by its status code.
    """
    _mask_httpx_log()
    run_id = body.get("run_id")
    try:
        response = httpx.post(url, json=body, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        reason = f"the webhook could not be reached ({type(exc).__name__})"
        retry = True
    else:
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"the webhook answered {status} {response.reason_phrase}"
        retry = status == 429 or status >= 500
    if retry:
        log.warning(f"alert for run {run_id} not delivered: {reason}; the next tick retries")
        raise AlertNotDelivered(
            f"{ALERT_WEBHOOK_URL}: alert for run {run_id} not delivered: {reason}"
        ) from None
    log.warning(f"alert for run {run_id} rejected: {reason}; check {ALERT_WEBHOOK_URL}")
    raise AlertRejected(
        f"{ALERT_WEBHOOK_URL}: alert for run {run_id} rejected: {reason} "
        f"(a revoked or mistyped URL?); not retried"
    )


def build_alert_sensor() -> dg.SensorDefinition:
    """The run-failure sensor, on by default; it reads ALERT_WEBHOOK_URL at each evaluation."""

    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_S,
        monitor_all_code_locations=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"POSTs a Slack-compatible message to {ALERT_WEBHOOK_URL} for every failed run "
            "(job, partition, run id, cause); skips while the variable is unset."
        ),
    )
    def run_failure_alert(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        run = context.dagster_run
        url = os.environ.get(ALERT_WEBHOOK_URL, "").strip()
        if not url:
            return dg.SkipReason(
                f"{ALERT_WEBHOOK_URL} is not set: no alert posted for the failed run {run.run_id} "
                f"(job {run.job_name}); set it to a webhook URL (a Slack incoming webhook works)"
            )
        post_alert(url, alert_body(run, failure_cause(context)), context.log)
        context.log.info(f"alert posted for the failed run {run.run_id}")
        return None

    return run_failure_alert


# --- NOTIFY_URLS: failed runs and findings, through apprise --------------------------------------

NOTIFY_SENSOR = "notify"
DAGSTER_WEBSERVER_URL = "DAGSTER_WEBSERVER_URL"
# A finding or failure is sent within ~NOTIFY_INTERVAL_S plus the daemon's loop (issue 28: 60 s).
NOTIFY_INTERVAL_S = 15
KEEP_DAYS = 40  # groups sent are remembered this many days back; older findings are not sent
LISTED = 10  # groups listed in full in one message; the rest are counted
PAGE = 100  # run-end events, and one run's check evaluations, read per query
MESSAGE_ERROR_LIMIT = 1000
_ENDED: Final = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
_RUNNING = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class NotifyState:
    """The `notify` sensor's cursor (module docstring): plain JSON, no URL in it."""

    after: int | None = None  # the run-end events' storage id read up to; None before the 1st tick
    running: dict[str, str] = field(default_factory=dict)  # run id -> its event cursor
    sent: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # day -> check -> groups
    outboxes: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # target key -> msgs

    @classmethod
    def load(cls, cursor: str | None) -> NotifyState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(
            after=data.get("after"),
            running=dict(data.get("running", {})),
            sent={d: {c: list(g) for c, g in v.items()} for d, v in data.get("sent", {}).items()},
            outboxes={k: list(v) for k, v in data.get("outboxes", {}).items()},
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "after": self.after,
                "running": self.running,
                "sent": self.sent,
                "outboxes": self.outboxes,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def was_sent(self, check: str, day: str, group: str) -> bool:
        return group in self.sent.get(day, {}).get(check, [])

    def mark_sent(self, check: str, day: str, group: str) -> None:
        self.sent.setdefault(day, {}).setdefault(check, []).append(group)

    def prune(self, oldest: str) -> None:
        self.sent = {day: checks for day, checks in self.sent.items() if day >= oldest}


@dataclass(frozen=True)
class Flagged:
    """A failed WARN evaluation of a notified check, as the contract (module docstring) has it."""

    check: str
    asset: dg.AssetKey
    day: str
    provisional: bool
    groups: list[dict[str, Any]]
    run_id: str


def flagged_of(evaluation: dg.AssetCheckEvaluation, run_id: str) -> Flagged | str | None:
    """The finding an evaluation reports; None when it is not one to send (another check, passed,
    not WARN); a line saying what is wrong when its metadata breaks the contract."""
    if (
        evaluation.check_name not in NOTIFIED_CHECKS
        or evaluation.passed
        or evaluation.severity != dg.AssetCheckSeverity.WARN
    ):
        return None
    where = f"{evaluation.check_name} on {evaluation.asset_key.to_user_string()} (run {run_id})"
    meta = evaluation.metadata
    day = meta["day"].value if "day" in meta else None
    if not (isinstance(day, str) and _DAY.fullmatch(day)):
        return f"{where}: no `day` (YYYY-MM-DD) in its metadata; not sent"
    flagged = meta["flagged"].value if "flagged" in meta else None
    if not isinstance(flagged, list):
        return f"{where}: no `flagged` list in its metadata; not sent"
    groups = [g for g in flagged if isinstance(g, dict) and isinstance(g.get("group"), str)]
    if len(groups) < len(flagged):
        return f"{where}: a `flagged` entry without a `group` string; not sent"
    provisional = meta["provisional"].value if "provisional" in meta else False
    return Flagged(
        check=evaluation.check_name,
        asset=evaluation.asset_key,
        day=day,
        provisional=provisional is True,
        groups=groups,
        run_id=run_id,
    )


def _figure(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        text = f"{round(value, 3):.3f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(_figure(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def figures(group: Mapping[str, Any]) -> str:
    """Every field of a flagged object but `group`, by name (the order Dagster's JSON metadata
    keeps them in, whatever order a check wrote): `attempts 42, country GB`."""
    return ", ".join(f"{k} {_figure(group[k])}" for k in sorted(group) if k != "group")


def check_url(base: str, asset: dg.AssetKey, check: str) -> str:
    """The check's page in the Dagster UI (the webserver's own path for it: the asset's checks
    tab, the check selected; dagster-webserver 1.13's assetDetailsPathForAssetCheck)."""
    path = "/".join(quote(part, safe="") for part in asset.path)
    return f"{base.rstrip('/')}/assets/{path}?view=checks&checkDetail={quote(check, safe='')}"


def finding_message(
    found: Flagged, new: Sequence[Mapping[str, Any]], base_url: str | None
) -> Message:
    """The message for the groups of `found` no earlier message named (`new`, in its order)."""
    n = len(new)
    noun = "group" if n == 1 else "groups"
    title = f"{found.check} flagged {n} {noun} on {found.day}"
    if found.provisional:
        title += " (provisional: today so far)"
    head = f"{found.check} on {found.day}: {n} new {noun} flagged"
    if len(found.groups) > n:
        head += f" ({len(found.groups)} in all; the others were sent before)"
    lines = [
        head + f", by {found.asset.to_user_string()} in run {found.run_id}.",
        *(f"- {g['group']}: {figures(g)}" for g in new[:LISTED]),
    ]
    if n > LISTED:
        lines.append(f"and {n - LISTED} more")
    if found.provisional:
        lines.append("Provisional: today's calls so far, checked after an intra-day sync.")
    if base_url:
        lines.append(f"Check: {check_url(base_url, found.asset, found.check)}")
        lines.append(f"Run: {base_url.rstrip('/')}/runs/{found.run_id}")
    return Message(title, "\n".join(lines), about=f"{found.check} {found.day}", kind="warning")


def failure_message(run: dg.DagsterRun, cause: str, base_url: str | None) -> Message:
    """The message for a failed run: the alert's text (`alert_body`), and its error in full."""
    alert = alert_body(run, cause)
    lines = [alert["text"]]
    if alert["error"].strip() and alert["error"].strip() not in alert["text"]:
        lines.append(_clip(alert["error"], MESSAGE_ERROR_LIMIT))
    if base_url:
        lines.append(f"Run: {base_url.rstrip('/')}{alert['run_path']}")
    partition = alert["partition"] or "(none)"
    return Message(
        title=f"Dagster run failed: job {run.job_name}, partition {partition}",
        body="\n".join(lines),
        about=f"failed run {run.run_id}",
        kind="failure",
    )


def _run_ends(instance: dg.DagsterInstance, after: int) -> list[dg.EventLogRecord]:
    """Run-end events (success, failure, cancel) after storage id `after`, oldest first: as many
    as are known to be complete (when a type fills its page, none past that page's last)."""
    pages = [
        instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=kind, after_storage_id=after),
            limit=PAGE,
            ascending=True,
        ).records
        for kind in _ENDED
    ]
    full = [page[-1].storage_id for page in pages if len(page) == PAGE]
    bound = min(full) if full else None
    records = [r for page in pages for r in page if bound is None or r.storage_id <= bound]
    return sorted(records, key=lambda r: r.storage_id)


def _newest_end(instance: dg.DagsterInstance) -> int:
    newest = [
        instance.fetch_run_status_changes(kind, limit=1, ascending=False).records for kind in _ENDED
    ]
    return max((page[0].storage_id for page in newest if page), default=0)


def _evaluations(
    instance: dg.DagsterInstance, run_id: str, cursor: str | None
) -> tuple[list[tuple[dg.AssetCheckEvaluation, str]], str | None]:
    """A run's check evaluations after `cursor`, and the cursor after them."""
    found: list[tuple[dg.AssetCheckEvaluation, str]] = []
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=PAGE
        )
        for record in page.records:
            event = record.event_log_entry.dagster_event
            if event is not None:
                found.append((event.asset_check_evaluation_data, run_id))
        cursor = page.cursor
        if not page.has_more:
            return found, cursor


def read_new(
    instance: dg.DagsterInstance,
    state: NotifyState,
    today: date,
    base_url: str | None,
    log: logging.Logger | dg.DagsterLogManager,
) -> list[Message]:
    """The messages for what happened since `state` (advanced in place): the findings of runs in
    progress and of runs that ended, and the failed runs, in the order they happened."""
    assert state.after is not None
    oldest = (today - timedelta(days=KEEP_DAYS)).isoformat()
    state.prune(oldest)
    ends = _run_ends(instance, state.after)
    ended = {r.event_log_entry.run_id for r in ends}
    messages: list[Message] = []

    def findings(evaluations: list[tuple[dg.AssetCheckEvaluation, str]]) -> None:
        for evaluation, run_id in evaluations:
            found = flagged_of(evaluation, run_id)
            if found is None:
                continue
            if isinstance(found, str):
                log.warning(found)
                continue
            if found.day < oldest:
                log.info(
                    f"{found.check} {found.day} (run {run_id}): not sent, the day is older than "
                    f"the {KEEP_DAYS} days whose sent groups are remembered"
                )
                continue
            new = []
            for group in found.groups:  # a group listed twice is sent once
                if not state.was_sent(found.check, found.day, group["group"]):
                    state.mark_sent(found.check, found.day, group["group"])
                    new.append(group)
            if new:
                messages.append(finding_message(found, new, base_url))

    running = list(instance.get_runs(filters=dg.RunsFilter(statuses=_RUNNING)))
    for run in reversed(running):  # oldest first
        if run.run_id in ended:
            continue
        evaluations, cursor = _evaluations(instance, run.run_id, state.running.get(run.run_id))
        if cursor is not None:
            state.running[run.run_id] = cursor
        findings(evaluations)
    for record in ends:
        run_id = record.event_log_entry.run_id
        evaluations, _ = _evaluations(instance, run_id, state.running.pop(run_id, None))
        findings(evaluations)
        event = record.event_log_entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.RUN_FAILURE:
            failed = instance.get_run_by_id(run_id)
            if failed is not None:
                cause = run_cause(instance, run_id, event.message)
                messages.append(failure_message(failed, cause, base_url))
        state.after = record.storage_id
    # a run followed while in progress always ends through the run-end events; one deleted does not
    live = {r.run_id for r in running}
    for run_id in [r for r in state.running if r not in live]:
        if instance.get_run_by_id(run_id) is None:
            del state.running[run_id]
    return messages


def notify_tick(
    instance: dg.DagsterInstance,
    cursor: str | None,
    env: Mapping[str, str],
    log: logging.Logger | dg.DagsterLogManager,
    today: date,
) -> dg.SensorResult:
    """One evaluation of the `notify` sensor: read what is new, queue it for each target of
    NOTIFY_URLS, deliver what each target's outbox holds; the new cursor and what was done."""
    state = NotifyState.load(cursor)
    raw = env.get(NOTIFY_URLS, "").strip()
    found, problems = outbox.targets(raw) if raw else ([], [])
    for problem in problems:
        log.warning(problem)
    if state.after is None or not found:
        # first tick, or nowhere to send: what ended so far is not sent; nothing is queued
        state.after = _newest_end(instance)
        state.running.clear()
        state.outboxes.clear()
        if not raw:
            why = (
                f"{NOTIFY_URLS} is not set: no finding or failed run is sent (set it to apprise "
                "URLs, README 'Notifications')"
            )
        elif not found:
            why = f"{NOTIFY_URLS} has no URL apprise can use: " + "; ".join(problems)
        else:
            why = "first tick: findings and failed runs from now on are sent"
        return dg.SensorResult(skip_reason=why, cursor=state.dump())
    base_url = env.get(DAGSTER_WEBSERVER_URL, "").strip() or None
    messages = read_new(instance, state, today, base_url, log)
    for message in messages:
        for target in found:
            full = outbox.enqueue(state.outboxes, target.key, message)
            if full:
                log.warning(f"{target.name}: {full}")
    report = outbox.deliver(found, state.outboxes)
    for line in report.sent:
        log.info(line)
    for line in [*report.dropped, *report.kept]:
        log.warning(line)
    done = (
        f"{len(messages)} new message(s) for {len(found)} target(s); {len(report.sent)} sent, "
        f"{len(report.dropped)} dropped, {report.queued} waiting"
    )
    return dg.SensorResult(
        skip_reason="; ".join([done, *report.lines(), *problems]), cursor=state.dump()
    )


def build_notify_sensor() -> dg.SensorDefinition:
    """The `notify` sensor, on by default; it reads NOTIFY_URLS at each evaluation."""

    @dg.sensor(
        name=NOTIFY_SENSOR,
        minimum_interval_seconds=NOTIFY_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Sends every failed run and each new finding of the fraud and ASR checks to the "
            f"apprise URLs of {NOTIFY_URLS}, at least once; skips while the variable is unset."
        ),
    )
    def notify(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return notify_tick(
            context.instance, context.cursor, os.environ, context.log, datetime.now(UTC).date()
        )

    return notify
