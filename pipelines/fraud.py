"""Fraud and abuse in a day's calls: Wangiri, IRSF, short-call dialers and ACD collapse.

Four checks over the calls of one local day `D` (the partition's, or today's, provisional, after
each intra-day sync), each a query of its own in warehouse/fraud/<check>.sql; `find` runs them
all and says, per check, which groups it flagged with their figures, which it compared, and which
it skipped for too little history. Every check is a WARN: nothing is wrong with the data, a
person should look (and is told: pipelines/notify.py).

Shared definitions (README "Fraud and abuse checks" has the table of thresholds):
- `D`'s calls: attempted in the local day (PARTITIONS_TIMEZONE), as every model. History `H`: the
  30 local days before `D`, read from `calls` as it stands.
- A number's key (`numbers.key_and_country`): its E.164 form where `numbers.e164` reads it, else its
  digits with any `+` dropped; None for words and empty strings. Its country
  (`numbers.fraud_country`): `numbers.country`, or `001` when that is None and the digits begin
  with a non-geographic calling code (+800, +808, +870, +878, +881, +882, +883, +888, +979).
- `home`: NUMBERS_HOME_COUNTRIES (default: NUMBERS_DEFAULT_REGION; neither set: no country is
  home). `high_risk`: NUMBERS_HIGH_RISK (default `001`).
- A short call: answered with duration < 6. `ring_s`: terminated_at - attempted_at in seconds, at
  millisecond precision.

The checks (thresholds are settings FRAUD_<CHECK>_<NAME>, settings.THRESHOLDS):
1. wangiri_inbound, per calling number (key) of D's inbound calls whose caller's country is known
   and not home.
2. irsf_destination, per account and destination country of D's outbound calls; rule
   `high_risk` (a) or `new_destination` (b); (a) is named when both apply.
3. short_call_dialer, per account and calling number (key) of D's outbound calls.
4. acd_collapse, per trunk and direction, every account together, against the medians of the
   days of H with enough answered calls.

What a check gives (`Finding`): `flagged`, a list of flat objects, each with `group` (the group's
key as a person reads it: the number; account/country; account/number; trunk/direction) beside
its key fields and figures; `compared`, the groups held to the thresholds; `skipped`, the groups
(their `group` strings) left out for too little history.

Flagged objects, by check (every figure a JSON number, shares in [0, 1], seconds as DOUBLE):
- wangiri_inbound: group (= number), number, country, attempts, distinct_called,
  unanswered_share, short_ring_share, busiest_bucket (floor(epoch(attempted_at) / 300)),
  busiest_bucket_start (ISO 8601 UTC), busiest_bucket_attempts, callbacks (D's outbound calls
  to the number, any account). Ordered by callbacks, then attempts, descending.
- irsf_destination: group (= account_sid/country), account_sid, country, rule, attempts,
  answered, answered_seconds, cost (None when no call carries one), distinct_called,
  top_prefixes (the five commonest first six digits of the called numbers' keys, without `+`:
  by count descending, then prefix). Ordered by attempts descending.
- short_call_dialer: group (= account_sid/number), account_sid, number, attempts, answered,
  short_calls, short_share, acd_s, distinct_called. Ordered by answered descending.
- acd_collapse: group (= trunk/direction; a call without trunk: `(no trunk)`), trunk,
  direction, answered, acd_s, short_share, baseline_acd_s, baseline_short_share, baseline_days.
  Ordered by group.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from pipelines.numbers import fraud_country, key_and_country
from pipelines.partitions import day_window
from pipelines.settings import THRESHOLDS, Settings
from warehouse.checks import CheckOutcome
from warehouse.database import Warehouse

CHECKS = ("wangiri_inbound", "irsf_destination", "short_call_dialer", "acd_collapse")
# the WARN checks whose findings are sent to NOTIFY_URLS (pipelines/notify.py)
NOTIFIED_CHECKS = ("asr_drop", *CHECKS)
HISTORY_DAYS = 30


@dataclass(frozen=True)
class Finding:
    """One check's outcome over one day."""

    check: str
    day: str  # YYYY-MM-DD
    flagged: list[dict[str, Any]] = field(default_factory=list)
    compared: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.flagged


@dataclass(frozen=True)
class Rules:
    """What the checks need besides the warehouse: the day's zone, how numbers are read, the
    thresholds (THRESHOLDS' names; a missing one takes its default)."""

    tz: str = "UTC"
    region: str | None = None  # NUMBERS_DEFAULT_REGION
    home: frozenset[str] = frozenset()  # NUMBERS_HOME_COUNTRIES (empty: every country foreign)
    high_risk: frozenset[str] = frozenset({"001"})  # NUMBERS_HIGH_RISK
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))

    def threshold(self, name: str) -> float:
        return self.thresholds.get(name, THRESHOLDS[name])

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            tz=settings.partitions_timezone,
            region=settings.numbers_default_region,
            home=settings.numbers_home_countries,
            high_risk=settings.numbers_high_risk,
            thresholds=dict(settings.fraud_thresholds),
        )


# how many flagged groups a check's sample and table name (the JSON `flagged` holds them all)
SHOWN = 20


def outcome(finding: Finding) -> CheckOutcome:
    """`finding` as a check's outcome: one violation a flagged group; its metadata the
    `flagged` objects, `compared`, `skipped`, a `summary` line and the `table` a person reads."""
    shown = finding.flagged[:SHOWN]
    if finding.flagged:
        summary = f"{len(finding.flagged)} of {finding.compared} groups flagged" + (
            f"; {len(finding.flagged) - SHOWN} more in `flagged`"
            if len(shown) < len(finding.flagged)
            else ""
        )
    else:
        summary = f"{finding.compared} groups compared, none flagged"
    if finding.skipped:
        summary += (
            f"; {len(finding.skipped)} skipped for too little history: "
            + ", ".join(finding.skipped[:SHOWN])
            + (" ..." if len(finding.skipped) > SHOWN else "")
        )
    sample = [f"{f['group']}: {_figures(f)}" for f in shown] or [summary]
    metadata: dict[str, Any] = {
        "flagged": finding.flagged,
        "compared": finding.compared,
        "skipped": finding.skipped,
        "summary": summary,
    }
    if shown:
        columns = list(shown[0])
        head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
        body = "".join("| " + " | ".join(_cell(f.get(c)) for c in columns) + " |\n" for f in shown)
        metadata["table"] = head + body
    return CheckOutcome(finding.check, len(finding.flagged), sample, metadata)


def flagged_table(findings: Iterable[Finding]) -> pa.Table:
    """fraud_flagged(check_name, group_key, figures): the rows of the model fraud_findings."""
    rows = [(f.check, g["group"], json.dumps(g)) for f in findings for g in f.flagged]
    return pa.table(
        {
            "check_name": pa.array([r[0] for r in rows], pa.string()),
            "group_key": pa.array([r[1] for r in rows], pa.string()),
            "figures": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _figures(flagged: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_cell(v)}" for k, v in flagged.items() if k != "group")


def find(wh: Warehouse, day: date, rules: Rules) -> dict[str, Finding]:
    """Every check of CHECKS over `day`'s calls in `wh`, in the order of CHECKS."""
    window = day_window(day, rules.tz)
    params: dict[str, Any] = {
        "tz": rules.tz,
        "day": day,
        "window_start": window.start,
        "window_end": window.end,
        "history_start": day_window(day - timedelta(days=HISTORY_DAYS), rules.tz).start,
        "history_days": HISTORY_DAYS,
    }
    numbers = [row["number"] for row in wh.rows("day_numbers", params, folder="fraud")]
    tables = {"fraud_numbers": numbers_table(numbers, rules.region)}

    def rows(name: str, **more: Any) -> list[dict[str, Any]]:
        return wh.rows(name, params | more, folder="fraud", tables=tables)

    t = rules.threshold
    iso = day.isoformat()
    history = _HistoryCountries(wh, params, rules.region)
    return {
        "wangiri_inbound": wangiri_inbound(
            iso,
            rows(
                "wangiri_inbound",
                home=sorted(rules.home),
                max_ring_s=t("FRAUD_WANGIRI_INBOUND_MAX_RING_S"),
            ),
            t,
        ),
        "irsf_destination": irsf_destination(
            iso, rows("irsf_destination"), rules.high_risk, history.reached, t
        ),
        "short_call_dialer": short_call_dialer(iso, rows("short_call_dialer"), t),
        "acd_collapse": acd_collapse(
            iso, rows("acd_collapse", min_answered=t("FRAUD_ACD_COLLAPSE_MIN_ANSWERED")), t
        ),
    }


Threshold = Callable[[str], float]


def numbers_table(numbers: Iterable[str], region: str | None) -> pa.Table:
    """fraud_numbers(number, key, country): each distinct number read once
    (`numbers.key_and_country`)."""
    distinct = list(dict.fromkeys(numbers))
    read = [key_and_country(n, region) for n in distinct]
    return pa.table(
        {
            "number": pa.array(distinct, pa.string()),
            "key": pa.array([key for key, _ in read], pa.string()),
            "country": pa.array([country for _, country in read], pa.string()),
        }
    )


def wangiri_inbound(day: str, rows: list[dict[str, Any]], t: Threshold) -> Finding:
    def hit(r: dict[str, Any]) -> bool:
        return bool(
            r["attempts"] >= t("FRAUD_WANGIRI_INBOUND_MIN_ATTEMPTS")
            and r["distinct_called"] >= t("FRAUD_WANGIRI_INBOUND_MIN_CALLED")
            and r["unanswered_share"] >= t("FRAUD_WANGIRI_INBOUND_MIN_UNANSWERED_SHARE")
            and r["short_ring_share"] >= t("FRAUD_WANGIRI_INBOUND_MIN_SHORT_RING_SHARE")
            and r["busiest_bucket_attempts"] >= t("FRAUD_WANGIRI_INBOUND_MIN_BURST")
        )

    flagged = [{"group": r["number"], **_without(r, "unanswered")} for r in rows if hit(r)]
    flagged.sort(key=lambda f: (-f["callbacks"], -f["attempts"], f["group"]))
    return Finding("wangiri_inbound", day, flagged, compared=len(rows))


def irsf_destination(
    day: str,
    rows: list[dict[str, Any]],
    high_risk: frozenset[str],
    reached: Callable[[str | None, set[str]], set[str]],
    t: Threshold,
) -> Finding:
    """Rule `high_risk` (a) before `new_destination` (b); a group of an account with too little
    history that (a) does not flag is skipped. `reached(account, countries)`: those of
    `countries` the account called in H (asked only of (b)'s candidates)."""
    min_days = t("FRAUD_IRSF_DESTINATION_MIN_ACTIVE_DAYS")
    candidates: dict[str | None, set[str]] = {}
    for r in rows:
        if (
            r["active_days"] >= min_days
            and r["attempts"] >= t("FRAUD_IRSF_DESTINATION_MIN_ATTEMPTS")
            and r["answered_seconds"] >= t("FRAUD_IRSF_DESTINATION_MIN_ANSWERED_S")
            and r["distinct_called"] >= t("FRAUD_IRSF_DESTINATION_MIN_CALLED")
        ):
            candidates.setdefault(r["account_sid"], set()).add(r["country"])
    old = {account: reached(account, wanted) for account, wanted in candidates.items()}
    flagged, skipped, compared = [], [], 0
    for r in rows:
        group = f"{r['account_sid']}/{r['country']}"
        if r["country"] in high_risk and r["attempts"] >= t(
            "FRAUD_IRSF_DESTINATION_HIGH_RISK_MIN_ATTEMPTS"
        ):
            rule = "high_risk"
        elif r["active_days"] < min_days:
            skipped.append(group)
            continue
        elif r["country"] in candidates.get(r["account_sid"], ()) and r["country"] not in old.get(
            r["account_sid"], ()
        ):
            rule = "new_destination"
        else:
            compared += 1
            continue
        compared += 1
        flagged.append({"group": group, "rule": rule, **_without(r, "active_days")})
    flagged.sort(key=lambda f: (-f["attempts"], f["group"]))
    return Finding("irsf_destination", day, flagged, compared, sorted(skipped))


def short_call_dialer(day: str, rows: list[dict[str, Any]], t: Threshold) -> Finding:
    def hit(r: dict[str, Any]) -> bool:
        return bool(
            r["answered"] >= t("FRAUD_SHORT_CALL_DIALER_MIN_ANSWERED")
            and r["short_share"] >= t("FRAUD_SHORT_CALL_DIALER_MIN_SHORT_SHARE")
            and r["acd_s"] < t("FRAUD_SHORT_CALL_DIALER_MAX_ACD_S")
            and r["distinct_called"] >= t("FRAUD_SHORT_CALL_DIALER_MIN_CALLED")
        )

    flagged = [{"group": f"{r['account_sid']}/{r['number']}", **r} for r in rows if hit(r)]
    flagged.sort(key=lambda f: (-f["answered"], f["group"]))
    return Finding("short_call_dialer", day, flagged, compared=len(rows))


def acd_collapse(day: str, rows: list[dict[str, Any]], t: Threshold) -> Finding:
    flagged, skipped = [], []
    for r in rows:
        group = f"{r['trunk'] or '(no trunk)'}/{r['direction']}"
        if r["baseline_days"] < t("FRAUD_ACD_COLLAPSE_MIN_BASELINE_DAYS"):
            skipped.append(group)
        elif (
            r["answered"] >= t("FRAUD_ACD_COLLAPSE_MIN_ANSWERED")
            and r["acd_s"] <= t("FRAUD_ACD_COLLAPSE_MAX_ACD_RATIO") * r["baseline_acd_s"]
            and r["short_share"]
            >= max(
                t("FRAUD_ACD_COLLAPSE_MIN_SHORT_SHARE"),
                t("FRAUD_ACD_COLLAPSE_SHORT_SHARE_FACTOR") * r["baseline_short_share"],
            )
        ):
            flagged.append({"group": group, **r})
    flagged.sort(key=lambda f: f["group"])
    return Finding("acd_collapse", day, flagged, len(rows) - len(skipped), sorted(skipped))


class _HistoryCountries:
    """Which countries an account called in H, read from its H numbers newest first and only
    until every country asked about is seen: a regular destination costs a few lookups, a new
    one the account's distinct numbers of 30 days (each read once per run)."""

    def __init__(self, wh: Warehouse, params: dict[str, Any], region: str | None) -> None:
        self._wh, self._params, self._region = wh, params, region
        self._country: dict[str, str | None] = {}

    def reached(self, account_sid: str | None, wanted: set[str]) -> set[str]:
        left, seen = set(wanted), set()
        rows = self._wh.rows(
            "irsf_destination_history",
            self._params | {"account_sid": account_sid},
            folder="fraud",
        )
        for row in rows:
            number = row["number"]
            if number not in self._country:
                self._country[number] = fraud_country(number, self._region)
            found = self._country[number]
            if found in left:
                left.discard(found)
                seen.add(found)
                if not left:
                    break
        return seen


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}
