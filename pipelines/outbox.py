"""NOTIFY_URLS' targets, each with an outbox of unsent messages, delivered at least once by apprise.

`targets` reads NOTIFY_URLS (apprise URLs separated by commas or spaces, split by apprise itself)
into `Target`s; `deliver` sends each target's outbox in order, through apprise (Slack, Teams,
PagerDuty, e-mail, JSON webhooks...). A message stays in its outbox until its target takes it:
unreachable, 429, 5xx, or a failure apprise gives no HTTP status for (the next call retries); any
other 4xx (a revoked or mistyped URL, a rejected body) cannot succeed by retrying: dropped, and
the caller logs it. Outboxes are plain JSON, kept by the caller between calls (the `notify`
sensor's cursor, pipelines/notify.py); this module knows apprise, not Dagster.

How a 4xx is told from a 5xx: apprise's `notify()` says only whether it worked. Its plugins log
why it did not at WARNING, and apprise hands those lines back in the result: an HTTP answer as
`error=<status>` (167 of its 219 plugins, JSON, Slack, Teams, PagerDuty among them), a connection
failure without one.

Must never: put a target's URL (its path or query often is the credential, as Slack's and a
JSON webhook's) anywhere but apprise's request. A target is named by its position in NOTIFY_URLS
and apprise's service name ("target 2 (Slack)"), and keyed in stored state by a hash of its URL
(`Target.key`). apprise's own log lines can hold a URL ("Unparseable URL ...", its debug lines):
those below WARNING are dropped, the URLs in the others blanked, and none leaves apprise's logger
(`_quiet`); urllib3's debug line of each request names its path, so it is dropped while a message
is sent. A log line here says what apprise answered in its words
that carry no URL: the status code.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

NOTIFY_URLS = "NOTIFY_URLS"
# A target's messages sent in one call at most; the rest wait for the next. apprise paces some
# services itself (Slack: 1.2 s between messages), and a sensor's evaluation has 60 s.
SENDS_PER_CALL = 10
# What one call may spend sending, all targets together; a target that is slow to refuse (a
# dropped connection waits for its timeout) delays the others by no more than this.
CALL_BUDGET_S = 30.0
# Unsent messages kept per target; beyond it the oldest is dropped, saying so.
OUTBOX_LIMIT = 200
KINDS = ("warning", "failure")

_STATUS = re.compile(r"\berror=([1-5]\d\d)\b")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_sending: contextvars.ContextVar[bool] = contextvars.ContextVar("outbox_sending", default=False)


@dataclass(frozen=True)
class Message:
    """One notification: `title` and `body` as apprise sends them; `about` names it in log lines
    (a check and its day, a run); `kind` is apprise's notify type."""

    title: str
    body: str
    about: str
    kind: str = "warning"

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body, "about": self.about, "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        kind = str(data.get("kind", "warning"))
        return cls(
            title=str(data["title"]),
            body=str(data["body"]),
            about=str(data.get("about", "")),
            kind=kind if kind in KINDS else "warning",
        )


@dataclass(frozen=True)
class Target:
    """A usable entry of NOTIFY_URLS. `position`: 1-based, as apprise splits the list; `key`: the
    first 12 hex digits of the URL's SHA-256, under which its outbox is kept."""

    position: int
    key: str
    service: str
    plugin: NotifyBase

    @property
    def name(self) -> str:
        return f"target {self.position} ({self.service})"


class Outcome(Enum):
    SENT = "sent"
    RETRY = "kept for the next try"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Report:
    """What one `deliver` did, each line naming target and message, never a URL."""

    sent: list[str]
    kept: list[str]  # a target's first unsent message and why, one line per target that has any
    dropped: list[str]
    queued: int  # messages left in the outboxes

    def lines(self) -> list[str]:
        return [*self.sent, *self.dropped, *self.kept]


def key_of(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


class _HideRequestLine(logging.Filter):
    """urllib3's debug line of each request names its path, which may be a target's secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _sending.get()


class _NoUrls(logging.Filter):
    """apprise's lines below WARNING name URLs ("Loaded JSON URL: json://host/secret", the URL
    posted to): dropped (apprise's results capture WARNING and above). Those above name one at
    times ("Unparseable URL ..."): every `scheme://...` in them is blanked out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.msg = _URL.sub("<url>", record.getMessage())
        record.args = ()
        return True


def _quiet() -> None:
    """apprise's own log lines never carry a URL out (`_NoUrls`), and stay inside apprise (its
    results carry them: its capture is a handler of its logger); urllib3's request line is
    dropped while a message is sent."""
    log = logging.getLogger("apprise")
    log.propagate = False
    if not any(isinstance(f, _NoUrls) for f in log.filters):
        log.addFilter(_NoUrls())
    pool = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _HideRequestLine) for f in pool.filters):
        pool.addFilter(_HideRequestLine())


def targets(raw: str) -> tuple[list[Target], list[str]]:
    """NOTIFY_URLS' usable targets in order (a URL given twice counts once), and one line per
    entry apprise cannot use, naming its position, not its text."""
    # apprise is imported where it is used: its import costs every Dagster process (each run
    # loads the definitions) about 0.1 s, and only the sensor's evaluations need it.
    import apprise
    from apprise.utils.parse import parse_urls

    _quiet()
    entries = [str(u) for u in parse_urls(raw)]  # type: ignore[no-untyped-call]
    found: list[Target] = []
    problems: list[str] = []
    seen: set[str] = set()
    for position, url in enumerate(entries, start=1):
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            problems.append(
                f"{NOTIFY_URLS}: entry {position} of {len(entries)} is not a URL apprise can use "
                "(ignored; see https://appriseit.com/services/ for each service's URL)"
            )
            continue
        key = key_of(url)
        if key in seen:
            continue
        seen.add(key)
        found.append(Target(position, key, str(plugin.service_name), plugin))
    return found, problems


def status_of(lines: list[str]) -> int | None:
    """The HTTP status a plugin's log lines give for a failed send (`error=503`), else None."""
    for line in lines:
        match = _STATUS.search(line)
        if match:
            return int(match.group(1))
    return None


def judge(ok: bool, lines: list[str]) -> tuple[Outcome, str]:
    """A send's outcome from apprise's answer and its plugin's log lines, and why, in words
    without a URL."""
    if ok:
        return Outcome.SENT, "sent"
    status = status_of(lines)
    if status is None:
        return Outcome.RETRY, "not delivered (unreachable, or no HTTP status given)"
    if status == 429 or status >= 500:
        return Outcome.RETRY, f"answered {status}"
    if 400 <= status < 500:
        return Outcome.DROPPED, f"answered {status}"
    return Outcome.RETRY, f"answered {status}"


@contextmanager
def _hiding_requests() -> Iterator[None]:
    token = _sending.set(True)
    try:
        yield
    finally:
        _sending.reset(token)


def send(target: Target, message: Message) -> tuple[Outcome, str]:
    """One message to one target: its outcome and why."""
    import apprise

    _quiet()
    kinds = {
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }
    sender = apprise.Apprise()
    sender.add(target.plugin)
    try:
        with (
            _hiding_requests(),
            sender.notify(
                body=message.body,
                title=message.title,
                notify_type=kinds[message.kind],
                body_format=apprise.NotifyFormat.TEXT,
            ) as result,
        ):
            return judge(bool(result), [entry.message for entry in result.logs()])
    except Exception as exc:  # a plugin's crash; its text may hold the URL, its class does not
        return Outcome.RETRY, f"apprise failed ({type(exc).__name__})"


def enqueue(outboxes: dict[str, list[dict[str, str]]], key: str, message: Message) -> str | None:
    """Add `message` to the outbox `key`; a line saying which message was dropped to make room."""
    box = outboxes.setdefault(key, [])
    box.append(message.to_json())
    if len(box) > OUTBOX_LIMIT:
        oldest = box.pop(0)
        return f"outbox full ({OUTBOX_LIMIT}): dropped the oldest message, {oldest.get('about')}"
    return None


def deliver(
    found: list[Target],
    outboxes: dict[str, list[dict[str, str]]],
    *,
    budget_s: float = CALL_BUDGET_S,
) -> Report:
    """Send each target's outbox in order, up to SENDS_PER_CALL messages each and `budget_s` in
    all; a message its target did not take for a reason worth retrying stops that target's turn
    (order is kept), a refused one is dropped. `outboxes` is changed in place: what is left in it
    is what the next call sends. Outboxes of keys not in `found` (a target taken out of
    NOTIFY_URLS) are removed."""
    for key in [k for k in outboxes if k not in {t.key for t in found}]:
        del outboxes[key]
    sent: list[str] = []
    kept: list[str] = []
    dropped: list[str] = []
    deadline = time.monotonic() + budget_s
    for target in found:
        box = outboxes.get(target.key, [])
        sends = 0
        while box and sends < SENDS_PER_CALL and time.monotonic() < deadline:
            message = Message.from_json(box[0])
            outcome, why = send(target, message)
            sends += 1
            if outcome is Outcome.RETRY:
                kept.append(
                    f"{target.name}: {message.about} {why}; {len(box)} message(s) kept for "
                    "the next tick"
                )
                break
            box.pop(0)
            if outcome is Outcome.SENT:
                sent.append(f"{target.name}: {message.about} sent")
            else:
                dropped.append(
                    f"{target.name}: {message.about} {why}, dropped: retrying cannot help "
                    f"(a revoked or mistyped URL?); check entry {target.position} of {NOTIFY_URLS}"
                )
        else:
            if box:
                kept.append(f"{target.name}: {len(box)} message(s) left for the next tick")
        if not box:
            outboxes.pop(target.key, None)
    return Report(sent, kept, dropped, sum(len(b) for b in outboxes.values()))
