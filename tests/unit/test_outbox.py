"""NOTIFY_URLS' targets and their outboxes: how apprise's answer is judged, the list read into
targets named by position and keyed by a hash, apprise's log lines without URLs, outbox bounds."""

import logging

import pytest

from pipelines import outbox
from pipelines.outbox import Message, Outcome, judge

SECRET = "hook-secret-Qm72"


@pytest.mark.parametrize(
    ("ok", "lines", "outcome"),
    [
        (True, [], Outcome.SENT),
        (
            False,
            ["A Connection error occurred sending JSON notification to 127.0.0.1."],
            Outcome.RETRY,
        ),
        (
            False,
            ["Failed to send JSON POST notification: Servers are overloaded., error=503."],
            Outcome.RETRY,
        ),
        (False, ["Failed to send JSON POST notification: error=429."], Outcome.RETRY),
        (
            False,
            ["Failed to send JSON POST notification: Page not found., error=404."],
            Outcome.DROPPED,
        ),
        (
            False,
            ["Failed to send to Slack: Bad Request - invalid_payload, error=400."],
            Outcome.DROPPED,
        ),
        (False, ["Failed to send Office 365 email to x: Unauthorized error=401."], Outcome.DROPPED),
        (False, ["some plugin could not send (no status)"], Outcome.RETRY),
    ],
)
def test_an_answer_is_judged_by_the_status_its_plugin_logged(
    ok: bool, lines: list[str], outcome: Outcome
) -> None:
    assert judge(ok, lines)[0] is outcome


def test_notify_urls_are_targets_named_by_position_and_keyed_by_a_hash() -> None:
    raw = (
        f"json://127.0.0.1:9/hooks/{SECRET}, bogus://{SECRET} "
        "slack://T1234/B1234/Qm72secretToken "
        f"json://127.0.0.1:9/hooks/{SECRET}"
    )
    found, problems = outbox.targets(raw)
    assert [(t.position, t.service) for t in found] == [(1, "JSON"), (3, "Slack")]  # 4 is 1 again
    assert found[0].key == outbox.key_of(f"json://127.0.0.1:9/hooks/{SECRET}")
    assert len(found[0].key) == 12
    assert SECRET not in found[0].key
    assert [t.name for t in found] == ["target 1 (JSON)", "target 3 (Slack)"]
    assert problems == [
        "NOTIFY_URLS: entry 2 of 4 is not a URL apprise can use (ignored; see "
        "https://appriseit.com/services/ for each service's URL)"
    ]


def test_apprise_lines_carry_no_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outbox.targets(f"nope://{SECRET}/x json://127.0.0.1:9/hooks/{SECRET}")
    log = logging.getLogger("apprise")
    assert not log.propagate  # its lines stay inside apprise: what its own handlers get is read
    log.addHandler(caplog.handler)  # as apprise's result capture is: a handler of its logger
    try:
        log.error("Unparseable URL %s", f"nope://{SECRET}/x")
        log.debug("JSON POST URL: %s", f"http://127.0.0.1:9/hooks/{SECRET}")
    finally:
        log.removeHandler(caplog.handler)
    assert "Unparseable URL <url>" in caplog.text
    assert "JSON POST URL" not in caplog.text
    assert SECRET not in caplog.text


def test_an_outbox_keeps_its_newest_messages_saying_which_it_dropped() -> None:
    boxes: dict[str, list[dict[str, str]]] = {}
    said = [
        outbox.enqueue(boxes, "k", Message("t", "b", about=f"m{i}"))
        for i in range(outbox.OUTBOX_LIMIT + 1)
    ]
    assert said[:-1] == [None] * outbox.OUTBOX_LIMIT
    assert said[-1] == f"outbox full ({outbox.OUTBOX_LIMIT}): dropped the oldest message, m0"
    assert boxes["k"][0]["about"] == "m1"
    assert len(boxes["k"]) == outbox.OUTBOX_LIMIT


def test_a_target_taken_out_of_notify_urls_loses_its_outbox() -> None:
    boxes = {"gone": [Message("t", "b", "m").to_json()]}
    report = outbox.deliver([], boxes)
    assert boxes == {}
    assert report.queued == 0
