"""The `notify` sensor's pure parts: what an evaluation's metadata is read as, the message a finding
makes, the cursor's state."""

import json
from typing import Any

import dagster as dg
import pytest

from pipelines.notify import (
    LISTED,
    Flagged,
    NotifyState,
    check_url,
    figures,
    finding_message,
    flagged_of,
)
from pipelines.outbox import Message


def evaluation(
    check: str = "wangiri_inbound",
    *,
    passed: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
    **metadata: Any,
) -> dg.AssetCheckEvaluation:
    meta = {"day": "2026-11-24", "flagged": [{"group": "+447400123456"}], **metadata}
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("fraud_findings"),
        check_name=check,
        passed=passed,
        severity=severity,
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, list) else v for k, v in meta.items()
        },
    )


def test_an_evaluation_is_a_finding_only_when_a_notified_check_fails_as_a_warning() -> None:
    found = flagged_of(evaluation(provisional=True), "run-1")
    assert found == Flagged(
        check="wangiri_inbound",
        asset=dg.AssetKey("fraud_findings"),
        day="2026-11-24",
        provisional=True,
        groups=[{"group": "+447400123456"}],
        run_id="run-1",
    )
    assert flagged_of(evaluation("nothing_quarantined"), "r") is None
    assert flagged_of(evaluation(passed=True), "r") is None
    assert flagged_of(evaluation(severity=dg.AssetCheckSeverity.ERROR), "r") is None
    plain = flagged_of(evaluation(), "r")
    assert isinstance(plain, Flagged)
    assert plain.provisional is False


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"day": "24/11/2026"}, "no `day` (YYYY-MM-DD)"),
        ({"flagged": "none"}, "no `flagged` list"),
        ({"flagged": [{"group": "a"}, {"number": "b"}]}, "without a `group` string"),
    ],
)
def test_an_evaluation_breaking_the_contract_says_what_is_wrong(
    metadata: dict[str, Any], problem: str
) -> None:
    said = flagged_of(evaluation(**metadata), "run-9")
    assert isinstance(said, str)
    assert said.startswith("wangiri_inbound on fraud_findings (run run-9): ")
    assert problem in said


def test_figures_are_every_field_but_the_group_by_name() -> None:
    group = {
        "group": "AC-1/001",
        "share": 0.149999,
        "answered_seconds": 600.0,
        "cost": None,
        "top_prefixes": ["882345", "881612"],
        "negative": -0.0001,
        "flag": True,
        "nested": {"b": 1, "a": 2},
    }
    assert figures(group) == (
        'answered_seconds 600, cost none, flag yes, negative 0, nested {"a": 2, "b": 1}, '
        "share 0.15, top_prefixes [882345, 881612]"
    )


def found(n: int, *, provisional: bool = False, asset: str = "fraud_findings") -> Flagged:
    groups = [{"group": f"+4474000000{i:02d}", "attempts": 20 + i} for i in range(n)]
    return Flagged("wangiri_inbound", dg.AssetKey(asset), "2026-11-24", provisional, groups, "r1")


def test_a_message_lists_ten_groups_then_counts_the_rest() -> None:
    flagged = found(LISTED + 2)
    message = finding_message(flagged, flagged.groups, None)
    assert message.title == f"wangiri_inbound flagged {LISTED + 2} groups on 2026-11-24"
    lines = message.body.splitlines()
    assert len(lines) == 1 + LISTED + 1
    assert lines[1] == "- +447400000000: attempts 20"
    assert lines[LISTED] == f"- +4474000000{LISTED - 1:02d}: attempts {20 + LISTED - 1}"
    assert lines[-1] == "and 2 more"
    assert message.kind == "warning"
    assert message.about == "wangiri_inbound 2026-11-24"


def test_a_message_links_the_check_and_the_run_in_the_ui() -> None:
    flagged = found(1, provisional=True, asset="calls_today")
    body = finding_message(flagged, flagged.groups, "https://dagster.example/").body
    assert (
        "https://dagster.example/assets/calls_today?view=checks&checkDetail=wangiri_inbound" in body
    )
    assert "Run: https://dagster.example/runs/r1" in body
    assert "Provisional: today's calls so far" in body
    # the UI's path for an asset check: each part of the key, encoded
    assert (
        check_url("http://ui:3000", dg.AssetKey(["fraud", "by day/x"]), "acd_collapse")
        == "http://ui:3000/assets/fraud/by%20day%2Fx?view=checks&checkDetail=acd_collapse"
    )


def test_the_state_round_trips_and_forgets_old_days() -> None:
    state = NotifyState(after=41, running={"r": "c"})
    state.mark_sent("wangiri_inbound", "2026-10-01", "+1")
    state.mark_sent("wangiri_inbound", "2026-11-24", "+2")
    state.outboxes["abc"] = [Message("t", "b", "m", "failure").to_json()]
    again = NotifyState.load(state.dump())
    assert again == state
    assert again.was_sent("wangiri_inbound", "2026-11-24", "+2")
    assert not again.was_sent("wangiri_inbound", "2026-11-24", "+1")
    again.prune("2026-10-16")
    assert list(again.sent) == ["2026-11-24"]
    assert json.loads(again.dump())["after"] == 41
    assert NotifyState.load(None) == NotifyState()
