"""Notifications: every failed run posts one message to a webhook, so a stopped sync is seen.

The sensor `run_failure_alert` (on by default; the daemon runs it, as `dg dev` does) POSTs
a Slack-compatible JSON body (`alert_body`: a one-line `text` and the same facts as fields) to
`ALERT_WEBHOOK_URL` for each failed run of this Dagster instance. It monitors every run of the
instance, not only this code location's: a run of `dagster asset materialize` carries no
code-location origin, and Dagster's default filter would let its failure pass unseen. The
instance (dagster.yaml) serves this one code location.

Delivery. Unset `ALERT_WEBHOOK_URL`: the sensor skips, saying so, and the failure stays unalerted.
A webhook that cannot be reached, times out, or answers 429 or 5xx: the tick fails with
`AlertNotDelivered` without moving the sensor's cursor, so the next tick (INTERVAL_S later) posts
the alert again: at least once, an alert posted earlier in that same tick may arrive twice. Any
other non-2xx (a revoked or mistyped URL, a rejected body) cannot succeed by retrying: the tick
fails with `AlertRejected` and the sensor moves on to the next failed run.

Must never: put the webhook URL anywhere but the request it is sent with. Slack's carry their
token in the path, so it is read from the environment at each evaluation and is in no run config,
tag, log line, SkipReason, exception or posted body (httpx's own request log line is masked too).
Must never add the jambonz API key, request headers or environment variables to an alert: the
text is the run's failure message, which never carries the key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
import httpx

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
