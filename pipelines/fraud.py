"""Fraud and abuse in a day's calls: Wangiri, IRSF, short-call dialers and ACD collapse.

Four checks over the calls of one local day `D` (the partition's, or today's, provisional, after
each intra-day sync), each a query of its own in warehouse/fraud/<check>.sql; `find` runs them
all and says, per check, which groups it flagged with their figures, which it compared, and which
it skipped for too little history. Every check is a WARN: nothing is wrong with the data, a
person should look (and is told: pipelines/notify.py).

Shared definitions (README "Fraud and abuse checks" has the table of thresholds):
- `D`'s calls: attempted in the local day (PARTITIONS_TIMEZONE), as every model. History `H`: the
  30 local days before `D`, read from `calls` as it stands.
- A number's key (`numbers.number_key`): its E.164 form where `numbers.e164` reads it, else its
  digits with any `+` dropped; None for words and empty strings. Its country
  (`numbers.fraud_country`): `numbers.country`, or `001` when that is None and the digits begin
  with a non-geographic calling code (+800, +808, +870, +878, +881, +882, +883, +888, +979).
- `home`: NUMBERS_HOME_COUNTRIES (default: NUMBERS_DEFAULT_REGION; neither set: no country is
  home). `high_risk`: NUMBERS_HIGH_RISK (default `001`).
- A short call: answered with duration < 6. `ring_s`: terminated_at - attempted_at in seconds, at
  millisecond precision.

The checks (thresholds are settings FRAUD_<CHECK>_<NAME>, `THRESHOLDS`):
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

from dataclasses import dataclass, field
from typing import Any

CHECKS = ("wangiri_inbound", "irsf_destination", "short_call_dialer", "acd_collapse")
# the WARN checks whose findings are sent to NOTIFY_URLS (pipelines/notify.py)
NOTIFIED_CHECKS = ("asr_drop", *CHECKS)
HISTORY_DAYS = 30
SHORT_CALL_S = 6

# FRAUD_<CHECK>_<NAME>: default (an int where the threshold counts things)
THRESHOLDS: dict[str, float] = {
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


def find(wh: Any, day: Any, rules: Rules) -> dict[str, Finding]:  # pragma: no cover - next commit
    """Every check of CHECKS over `day`'s calls in `wh` (a warehouse.database.Warehouse)."""
    raise NotImplementedError
