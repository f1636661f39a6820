"""The fraud checks of issue 28, computed by brute force from the calls a test generated.

An oracle that shares the code it judges passes that code's bugs, so nothing here imports
pipelines or warehouse: each definition of the issue ("Definitions shared by the checks", "The
checks") is written again, plainly, one call at a time, in Python over the test's own calls:

- `D`'s calls are those attempted in the local day `D` (`tz`); history `H` is the 30 local days
  before `D`.
- A number's key and country come from `read`, the caller's literal table of what
  libphonenumber says of each number it generated (never from pipelines/numbers.py).
- A short call: answered with duration < 6. `ring_s`: terminated - attempted, to the millisecond.
- The thresholds are the issue's (DEFAULTS), unless the caller moves one.

Where the issue leaves a choice open the oracle takes the plain reading (`compared` and
`skipped`: a group left out for too little history is in `skipped` and not in `compared`, and a
group is left out only when no rule it is held to could flag it), and where it leaves a figure
open it says so: a flagged group whose busiest bucket is a tie gets `OneOf` the tied buckets;
flagged groups tied on the figures they are ordered by may come in any order (`order`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# The issue's thresholds, by their settings' names ("Every threshold below is a setting named
# FRAUD_<CHECK>_<NAME>"), read off "The checks"
DEFAULTS: dict[str, float] = {
    "FRAUD_WANGIRI_INBOUND_MIN_ATTEMPTS": 20,
    "FRAUD_WANGIRI_INBOUND_MIN_CALLED": 10,
    "FRAUD_WANGIRI_INBOUND_MIN_UNANSWERED_SHARE": 0.90,
    "FRAUD_WANGIRI_INBOUND_MAX_RING_S": 8,
    "FRAUD_WANGIRI_INBOUND_MIN_SHORT_RING_SHARE": 0.80,
    "FRAUD_WANGIRI_INBOUND_MIN_BURST": 10,
    "FRAUD_IRSF_DESTINATION_HIGH_RISK_MIN_ATTEMPTS": 5,
    "FRAUD_IRSF_DESTINATION_MIN_ACTIVE_DAYS": 7,
    "FRAUD_IRSF_DESTINATION_MIN_ATTEMPTS": 10,
    "FRAUD_IRSF_DESTINATION_MIN_ANSWERED_S": 600,
    "FRAUD_IRSF_DESTINATION_MIN_CALLED": 3,
    "FRAUD_SHORT_CALL_DIALER_MIN_ANSWERED": 100,
    "FRAUD_SHORT_CALL_DIALER_MIN_SHORT_SHARE": 0.15,
    "FRAUD_SHORT_CALL_DIALER_MAX_ACD_S": 60,
    "FRAUD_SHORT_CALL_DIALER_MIN_CALLED": 50,
    "FRAUD_ACD_COLLAPSE_MIN_ANSWERED": 50,
    "FRAUD_ACD_COLLAPSE_MIN_BASELINE_DAYS": 5,
    "FRAUD_ACD_COLLAPSE_MAX_ACD_RATIO": 0.5,
    "FRAUD_ACD_COLLAPSE_MIN_SHORT_SHARE": 0.15,
    "FRAUD_ACD_COLLAPSE_SHORT_SHARE_FACTOR": 2,
}
HISTORY_DAYS = 30
SHORT_S = 6
BUCKET_MS = 300_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_TRUNK = "(no trunk)"

# a number as the checks read it: (key, country), from the test's literal table
Read = Callable[[str | None], tuple[str | None, str | None]]


@dataclass(frozen=True)
class Call:
    """One call as the test generated it (and sent it, in the API's shape, to the warehouse)."""

    sid: str
    account: str
    direction: str
    from_: str | None
    to: str | None
    trunk: str | None
    attempted: datetime  # UTC, whole milliseconds
    terminated: datetime
    answered: bool
    duration: int  # seconds; 0 when unanswered
    cost: float | None = None

    @property
    def ring_ms(self) -> int:
        return (self.terminated - self.attempted) // timedelta(milliseconds=1)

    @property
    def epoch_ms(self) -> int:
        return (self.attempted - EPOCH) // timedelta(milliseconds=1)

    @property
    def short(self) -> bool:
        return self.answered and self.duration < SHORT_S


@dataclass(frozen=True)
class OneOf:
    """A figure the issue leaves open between `values`: equal to any of them."""

    values: list[Any]

    def __eq__(self, other: object) -> bool:
        return any(other == v for v in self.values)

    def __hash__(self) -> int:
        return hash(tuple(self.values))

    def __repr__(self) -> str:
        return f"OneOf({self.values!r})"

    def map(self, f: Callable[[Any], Any]) -> OneOf:
        return OneOf([f(v) for v in self.values])

    def only(self) -> Any:
        """The one value, or self when there are several."""
        return self.values[0] if len(self.values) == 1 else self


def local_day(ts: datetime, tz: str) -> date:
    return ts.astimezone(ZoneInfo(tz)).date()


@dataclass(frozen=True)
class Day:
    """What the checks read: `D`'s calls and the calls of `H`."""

    day: date
    today: list[Call]
    history: list[Call]
    history_days: dict[str, date]  # sid -> local day, for the calls of `history`


def split(calls: list[Call] | tuple[Call, ...], day: date, tz: str) -> Day:
    first = day - timedelta(days=HISTORY_DAYS)
    today, history, days = [], [], {}
    for c in calls:
        d = local_day(c.attempted, tz)
        if d == day:
            today.append(c)
        elif first <= d < day:
            history.append(c)
            days[c.sid] = d
    return Day(day, today, history, days)


def findings(
    calls: list[Call] | tuple[Call, ...],
    day: date,
    *,
    tz: str,
    read: Read,
    home: frozenset[str],
    high_risk: frozenset[str],
    thresholds: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """check -> {"flagged": [...], "compared": n, "skipped": [group, ...] (sorted)}."""
    t = {**DEFAULTS, **(thresholds or {})}
    d = split(calls, day, tz)
    return {
        "wangiri_inbound": wangiri_inbound(d, read, home, t),
        "irsf_destination": irsf_destination(d, read, high_risk, t),
        "short_call_dialer": short_call_dialer(d, read, t),
        "acd_collapse": acd_collapse(d, t),
    }


def _result(
    flagged: list[dict[str, Any]],
    compared: list[str],
    skipped: list[str],
    order: tuple[str, ...],
    descending: bool = True,
) -> dict[str, Any]:
    """What find's Finding must hold; `order`: the figures the flagged groups are ordered by
    (ties, which the issue leaves open, broken here by group); `groups`: the names of the
    groups compared (a Finding holds only their number; the tests say which they meant)."""
    flagged = sorted(flagged, key=lambda f: f["group"])
    flagged.sort(key=lambda f: tuple(f[k] for k in order), reverse=descending)
    return {
        "flagged": flagged,
        "compared": len(compared),
        "skipped": sorted(skipped),
        "order": order,
        "descending": descending,
        "groups": sorted(compared),
    }


# 1. wangiri_inbound ------------------------------------------------------------------------------


def wangiri_inbound(
    d: Day, read: Read, home: frozenset[str], t: dict[str, float]
) -> dict[str, Any]:
    def th(name: str) -> float:
        return t["FRAUD_WANGIRI_INBOUND_" + name]

    groups: dict[str, list[Call]] = defaultdict(list)
    country_of: dict[str, str] = {}
    for c in d.today:
        if c.direction != "inbound":
            continue
        key, country = read(c.from_)
        if country is None or country in home:  # known and not home
            continue
        assert key is not None
        groups[key].append(c)
        country_of[key] = country
    callbacks = Counter(read(c.to)[0] for c in d.today if c.direction == "outbound")
    flagged = []
    for key, calls in groups.items():
        attempts = len(calls)
        called = {k for k in (read(c.to)[0] for c in calls) if k is not None}
        unanswered = [c for c in calls if not c.answered]
        unanswered_share = len(unanswered) / attempts
        short_rings = [c for c in unanswered if c.ring_ms <= th("MAX_RING_S") * 1000]
        short_ring_share = len(short_rings) / len(unanswered) if unanswered else None
        buckets = Counter(c.epoch_ms // BUCKET_MS for c in calls)
        busiest_n = max(buckets.values())
        if not (
            attempts >= th("MIN_ATTEMPTS")
            and len(called) >= th("MIN_CALLED")
            and unanswered_share >= th("MIN_UNANSWERED_SHARE")
            and short_ring_share is not None
            and short_ring_share >= th("MIN_SHORT_RING_SHARE")
            and busiest_n >= th("MIN_BURST")
        ):
            continue
        # the issue names no one of several buckets with the most attempts: any of them will do
        busiest = OneOf(sorted(b for b, n in buckets.items() if n == busiest_n))
        flagged.append(
            {
                "group": key,
                "number": key,
                "country": country_of[key],
                "attempts": attempts,
                "distinct_called": len(called),
                "unanswered_share": unanswered_share,
                "short_ring_share": short_ring_share,
                "busiest_bucket": busiest.only(),
                "busiest_bucket_start": busiest.map(
                    lambda b: EPOCH + timedelta(milliseconds=b * BUCKET_MS)
                ).only(),
                "busiest_bucket_attempts": busiest_n,
                "callbacks": callbacks[key],
            }
        )
    return _result(flagged, list(groups), [], ("callbacks", "attempts"))


# 2. irsf_destination -----------------------------------------------------------------------------


def irsf_destination(
    d: Day, read: Read, high_risk: frozenset[str], t: dict[str, float]
) -> dict[str, Any]:
    def th(name: str) -> float:
        return t["FRAUD_IRSF_DESTINATION_" + name]

    active: dict[str, set[date]] = defaultdict(set)
    called_before: dict[str, set[str | None]] = defaultdict(set)
    for c in d.history:
        active[c.account].add(d.history_days[c.sid])
        if c.direction == "outbound":
            called_before[c.account].add(read(c.to)[1])
    groups: dict[tuple[str, str], list[Call]] = defaultdict(list)
    for c in d.today:
        if c.direction != "outbound":
            continue
        country = read(c.to)[1]
        # a call whose number reads as no country has no destination country: no group (the
        # issue groups by "destination country"; the test generates no such outbound call)
        assert country is not None, c
        groups[(c.account, country)].append(c)
    flagged, skipped, compared = [], [], []
    for (account, country), calls in groups.items():
        group = f"{account}/{country}"
        answered = [c for c in calls if c.answered]
        seconds = float(sum(c.duration for c in answered))
        keys = [read(c.to)[0] for c in calls]
        called = {k for k in keys if k is not None}
        costs = [c.cost for c in calls if c.cost is not None]
        prefixes = Counter(k.lstrip("+")[:6] for k in keys if k is not None)
        rule_a = country in high_risk and len(calls) >= th("HIGH_RISK_MIN_ATTEMPTS")
        history = len(active[account]) >= th("MIN_ACTIVE_DAYS")
        rule_b = (
            history
            and country not in called_before[account]
            and len(calls) >= th("MIN_ATTEMPTS")
            and seconds >= th("MIN_ANSWERED_S")
            and len(called) >= th("MIN_CALLED")
        )
        if not rule_a and not history:
            skipped.append(group)  # rule (b) needs history, rule (a) did not flag it
            continue
        compared.append(group)
        if not (rule_a or rule_b):
            continue
        flagged.append(
            {
                "group": group,
                "account_sid": account,
                "country": country,
                "rule": "high_risk" if rule_a else "new_destination",
                "attempts": len(calls),
                "answered": len(answered),
                "answered_seconds": seconds,
                "cost": math.fsum(costs) if costs else None,
                "distinct_called": len(called),
                "top_prefixes": [
                    p for p, _ in sorted(prefixes.items(), key=lambda pn: (-pn[1], pn[0]))[:5]
                ],
            }
        )
    return _result(flagged, compared, skipped, ("attempts",))


# 3. short_call_dialer ----------------------------------------------------------------------------


def short_call_dialer(d: Day, read: Read, t: dict[str, float]) -> dict[str, Any]:
    def th(name: str) -> float:
        return t["FRAUD_SHORT_CALL_DIALER_" + name]

    groups: dict[tuple[str, str], list[Call]] = defaultdict(list)
    for c in d.today:
        if c.direction == "outbound":
            key = read(c.from_)[0]
            assert key is not None, c  # the test generates no outbound call without a number
            groups[(c.account, key)].append(c)
    flagged = []
    for (account, number), calls in groups.items():
        answered = [c for c in calls if c.answered]
        if not answered:
            continue
        short = sum(1 for c in answered if c.short)
        share = short / len(answered)
        acd = sum(c.duration for c in answered) / len(answered)
        called = {k for k in (read(c.to)[0] for c in calls) if k is not None}
        if (
            len(answered) >= th("MIN_ANSWERED")
            and share >= th("MIN_SHORT_SHARE")
            and acd < th("MAX_ACD_S")
            and len(called) >= th("MIN_CALLED")
        ):
            flagged.append(
                {
                    "group": f"{account}/{number}",
                    "account_sid": account,
                    "number": number,
                    "attempts": len(calls),
                    "answered": len(answered),
                    "short_calls": short,
                    "short_share": share,
                    "acd_s": acd,
                    "distinct_called": len(called),
                }
            )
    return _result(flagged, [f"{a}/{n}" for a, n in groups], [], ("answered",))


# 4. acd_collapse ---------------------------------------------------------------------------------


def _acd_share(calls: list[Call]) -> tuple[int, float | None, float | None]:
    answered = [c for c in calls if c.answered]
    if not answered:
        return 0, None, None
    acd = sum(c.duration for c in answered) / len(answered)
    return len(answered), acd, sum(1 for c in answered if c.short) / len(answered)


def acd_collapse(d: Day, t: dict[str, float]) -> dict[str, Any]:
    def th(name: str) -> float:
        return t["FRAUD_ACD_COLLAPSE_" + name]

    today: dict[tuple[str | None, str], list[Call]] = defaultdict(list)
    for c in d.today:
        today[(c.trunk, c.direction)].append(c)
    past: dict[tuple[str | None, str], dict[date, list[Call]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for c in d.history:
        past[(c.trunk, c.direction)][d.history_days[c.sid]].append(c)
    flagged, skipped, compared = [], [], []
    for (trunk, direction), calls in today.items():
        group = f"{NO_TRUNK if trunk is None else trunk}/{direction}"
        days = [_acd_share(cs) for cs in past[(trunk, direction)].values()]
        baseline = [(acd, share) for n, acd, share in days if n >= th("MIN_ANSWERED")]
        if len(baseline) < th("MIN_BASELINE_DAYS"):
            skipped.append(group)
            continue
        compared.append(group)
        base_acd = statistics.median(a for a, _ in baseline)
        base_share = statistics.median(s for _, s in baseline)
        answered, acd, share = _acd_share(calls)
        if not (
            answered >= th("MIN_ANSWERED")
            and acd is not None
            and share is not None
            and acd <= th("MAX_ACD_RATIO") * base_acd
            and share >= max(th("MIN_SHORT_SHARE"), th("SHORT_SHARE_FACTOR") * base_share)
        ):
            continue
        flagged.append(
            {
                "group": group,
                "trunk": trunk,
                "direction": direction,
                "answered": answered,
                "acd_s": acd,
                "short_share": share,
                "baseline_acd_s": base_acd,
                "baseline_short_share": base_share,
                "baseline_days": len(baseline),
            }
        )
    return _result(flagged, compared, skipped, ("group",), descending=False)
