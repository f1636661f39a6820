"""The simulator's alerts: what jambonz's alert writer stores, one account- or SP-day at a time.

An alert is an InfluxDB point (shared/docs/jambonz-alerts.md): its identity is its time to the
nanosecond plus its tag set (`account_sid`, `alert_type`, `service_provider_sid`, `vendor`); the
writer puts the string "undefined" in a tag it was not given. `Alert` holds one as served (the 7
keys in the server's order) with its time in ns and its series key, which orders alerts of one
instant (descending, as InfluxDB merges series).

`generate_alerts(seed, owner, day, calls_per_day)` draws the alerts of one account (owner = its
index in ACCOUNTS) or of the service provider itself (owner = SP_OWNER) on one UTC day, from an
RNG stream of their own, so the calls of a seed are the same with or without alerts. About 1.5%
of calls_per_day random alerts an account-day (none when it is 0), of the writer's types and
messages, account-call-limit the most common (calls refused at the limit), plus the cases a
client must survive, planted on every day with calls: an alert at 00:00:00Z (an inclusive `end`
at the next midnight returns it), three alerts sharing a millisecond, two with the same tags
apart by less than a millisecond (9 fraction digits), one with service_provider_sid
"undefined", and one account-call-limit alert of each account at the instant of the service
provider's service-provider-call-limit alert (a tie across scopes). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.jambonz.simulator.generator import (
    _HOUR_P,
    ACCOUNTS,
    DAY_NS,
    MS,
    NS,
    SERVICE_PROVIDER_SID,
    format_influx,
)

ALERT_KEYS: tuple[str, ...] = (
    "time",
    "account_sid",
    "alert_type",
    "detail",
    "message",
    "service_provider_sid",
    "vendor",
)
TAGS: tuple[str, ...] = ("account_sid", "alert_type", "service_provider_sid", "vendor")
UNDEFINED = "undefined"  # the writer's tag value for an account or SP it was not given
SP_OWNER = len(ACCOUNTS)  # `owner` of the service provider's own alerts
ALERT_SHARE = 0.015  # random alerts an account-day, per call of calls_per_day
SP_SHARE = 0.2  # the service provider's own random alerts, per random account alert
PLANTED = 8  # alerts planted on every account-day with calls (2 on the service provider's)
_STREAM = 0xA1E7  # the alerts' RNG stream (the calls' is [seed, acct, day])

_URLS = (
    "https://hooks.example.com/jambonz/call",
    "http://10.20.0.7:3000/status",
    "https://api.example.net/v2/calls/status",
    "https://app.example.org/voice?x=1&y=2",
)
_STATUSES = (500, 502, 503, 404)
_VENDORS: tuple[tuple[str, str | None], ...] = (  # (vendor, label): label None prints "none"
    ("google", "en-prod"),
    ("microsoft", None),
    ("aws", None),
    ("deepgram", "nova"),
    ("elevenlabs", "brand-voice"),
)
_DETAILS = (
    "timeout after 5000 ms, 3 attempts",
    "caller café-bar, line 2",
    'carrier "pstn-west" answered 503, retry in 30s',
)
_LIMIT = "; please consider upgrading your plan"
# (alert_type, message template, weight among an account's random alerts); {url}, {status},
# {vendor}, {label}, {count} are the writer's inputs
_ACCOUNT_TYPES: tuple[tuple[str, str, int], ...] = (
    ("webhook-failure", "{url} returned {status}", 14),
    ("webhook-connection-failure", "failed to connect to {url}", 12),
    ("webhook-auth-failure", "authentication failure: {url}", 3),
    ("webhook-url-notfound", "webhook url not found: {url}", 2),
    ("invalid-app-payload", "{url} return invalid app payload", 2),
    (
        "no-tts",
        "text to speech credentials for {vendor} (label: {label}) have not been provisioned",
        2,
    ),
    (
        "no-stt",
        "speech to text credentials for {vendor} (label: {label}) have not been provisioned",
        2,
    ),
    (
        "tts-failure",
        "text to speech request to {vendor} (label: {label}) failed; "
        "please check your speech credentials",
        8,
    ),
    (
        "stt-failure",
        "speech to text request to {vendor} (label: {label}) failed; "
        "please check your speech credentials",
        8,
    ),
    (
        "tts-streaming-connection-failure",
        "Failed to connect to tts streaming service at {vendor}",
        2,
    ),
    ("no-carrier", "outbound call failure: no carriers have been provisioned", 3),
    ("account-call-limit", "you have exceeded your account call limit of {count}" + _LIMIT, 16),
    (
        "account-device-limit",
        "you have exceeded your account limit of {count} registered devices" + _LIMIT,
        2,
    ),
    ("account-api-limit", "you have exceeded your account api limit of {count}" + _LIMIT, 4),
    ("play-url-notfound", "The file at {url} was not found", 4),
    ("alert-from-application", "application error: {url} returned {status}", 1),
    ("account is inactive or suspended", "account is inactive or suspended", 1),
)
_SP_TYPES: tuple[tuple[str, str, int], ...] = (
    (
        "service-provider-call-limit",
        "you have exceeded your service provider call limit of {count}" + _LIMIT,
        6,
    ),
    (
        "service-provider-api-limit",
        "you have exceeded your service provider api limit of {count}" + _LIMIT,
        3,
    ),
    (
        "service-provider-device-limit",
        "you have exceeded your service provider limit of {count} registered devices" + _LIMIT,
        1,
    ),
)
_TEMPLATES = {t: m for t, m, _ in _ACCOUNT_TYPES + _SP_TYPES}
_SPEECH = {"no-tts", "no-stt", "tts-failure", "stt-failure", "tts-streaming-connection-failure"}
_COUNTS = {  # the limits a {count} is drawn from
    "account-call-limit": (10, 25, 50, 100),
    "account-device-limit": (10, 50),
    "account-api-limit": (10, 100),
    "service-provider-call-limit": (500,),
    "service-provider-api-limit": (1000,),
    "service-provider-device-limit": (200,),
}


def _escape(value: str) -> str:
    return value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def series_key(record: dict[str, Any]) -> str:
    """InfluxDB's series key of a record: its tags by key, escaped, a null tag left out."""
    tags = ((k, record.get(k)) for k in TAGS)
    return ",".join(f"{k}={_escape(str(v))}" for k, v in tags if v is not None)


@dataclass(frozen=True)
class Alert:
    """One stored alert: its time in ns, the record as served, its series key."""

    at_ns: int
    record: dict[str, Any]
    series: str

    @classmethod
    def of(cls, at_ns: int, record: dict[str, Any]) -> Alert:
        return cls(at_ns, record, series_key(record))

    @property
    def order(self) -> tuple[int, str]:
        """Sorted descending, this is the answer's order: newest first, ties by series key."""
        return self.at_ns, self.series

    def served(self) -> dict[str, Any]:
        """The record as the API sends it (an injected record's private `_` keys left out)."""
        return {k: v for k, v in self.record.items() if not k.startswith("_")}


def make_alert(
    at_ns: int,
    alert_type: str,
    *,
    account_sid: str = UNDEFINED,
    service_provider_sid: str = SERVICE_PROVIDER_SID,
    vendor: str | None = None,
    label: str | None = None,
    url: str = _URLS[0],
    status: int = 500,
    count: int = 0,
    detail: str | None = None,
) -> Alert:
    """An alert as the writer stores it: the message built from its type's template."""
    message = _TEMPLATES.get(alert_type, alert_type).format(
        url=url, status=status, vendor=vendor, label=label or "none", count=count
    )
    record = {
        "time": format_influx(at_ns),
        "account_sid": account_sid,
        "alert_type": alert_type,
        "detail": detail,
        "message": message,
        "service_provider_sid": service_provider_sid,
        "vendor": vendor,
    }
    return Alert.of(at_ns, record)


def random_alerts(
    rng: np.random.Generator,
    owner: int,
    times_ns: np.ndarray,
    *,
    alert_type: str | None = None,
    no_sp_share: float = 0.02,
) -> list[Alert]:
    """Alerts of random types (or all of `alert_type`) at the given times, of an account
    (owner < SP_OWNER) or the SP; no_sp_share of an account's written without the SP's sid."""
    n = int(times_ns.shape[0])
    table = _SP_TYPES if owner == SP_OWNER else _ACCOUNT_TYPES
    weights = np.array([w for _, _, w in table], dtype=float)
    kinds = rng.choice(len(table), n, p=weights / weights.sum())
    vendors = rng.integers(0, len(_VENDORS), n)
    urls = rng.integers(0, len(_URLS), n)
    statuses = rng.integers(0, len(_STATUSES), n)
    counts = rng.integers(0, 4, n)
    r_detail = rng.random(n)
    details = rng.integers(0, len(_DETAILS), n)
    no_sp = rng.random(n) < no_sp_share
    alerts = []
    for i in range(n):
        kind = alert_type or table[int(kinds[i])][0]
        vendor, label = _VENDORS[int(vendors[i])] if kind in _SPEECH else (None, None)
        limits = _COUNTS.get(kind, (0,))
        alerts.append(
            make_alert(
                int(times_ns[i]),
                kind,
                account_sid=UNDEFINED if owner == SP_OWNER else ACCOUNTS[owner],
                service_provider_sid=UNDEFINED
                if owner != SP_OWNER and no_sp[i]
                else SERVICE_PROVIDER_SID,
                vendor=vendor,
                label=label,
                url=_URLS[int(urls[i])],
                status=_STATUSES[int(statuses[i])],
                count=limits[int(counts[i]) % len(limits)],
                detail=_DETAILS[int(details[i])] if r_detail[i] < 0.04 else None,
            )
        )
    return alerts


def _times(rng: np.random.Generator, day: int, n: int) -> np.ndarray:
    """n instants of a UTC day on the calls' daily curve, at the precision of a second (5%),
    a millisecond (60%), a microsecond (10%) or a nanosecond (25%)."""
    hours = rng.choice(24, n, p=_HOUR_P).astype(np.int64)
    ms = rng.integers(0, 3_600_000, n).astype(np.int64)
    precision = rng.choice(4, n, p=[0.05, 0.6, 0.1, 0.25])
    below = np.select(
        [precision == 2, precision == 3], [rng.integers(0, 1000, n) * 1000, rng.integers(0, MS, n)]
    )
    at = day * DAY_NS + hours * 3600 * NS + ms * MS + below.astype(np.int64)
    return np.where(precision == 0, at - at % NS, at)


def _ms_time(rng: np.random.Generator, day: int) -> int:
    """An instant of the day at exactly 3 fraction digits (the last one not 0)."""
    ms = int(rng.integers(0, 8_640_000)) * 10 + int(rng.integers(1, 10))
    return day * DAY_NS + ms * MS


def limit_instant(seed: int, day: int) -> int:
    """When, on a day, the service provider hit its call limit: the instant every account's
    account-call-limit alert shares with the SP's service-provider-call-limit alert."""
    return _ms_time(np.random.default_rng([seed, day, _STREAM]), day)


def generate_alerts(seed: int, owner: int, day: int, calls_per_day: int) -> list[Alert]:
    """The alerts of an account (owner: its index in ACCOUNTS) or of the service provider
    (owner: SP_OWNER) written on UTC day `day` (days since the epoch), in no order."""
    if calls_per_day <= 0:
        return []
    rng = np.random.default_rng([seed, owner, day, _STREAM])
    share = ALERT_SHARE * calls_per_day
    if owner == SP_OWNER:
        share *= SP_SHARE * len(ACCOUNTS)
    alerts = random_alerts(rng, owner, _times(rng, day, int(rng.poisson(share))))
    midnight, tie = day * DAY_NS, limit_instant(seed, day)
    if owner == SP_OWNER:
        return [
            *alerts,
            make_alert(midnight, "service-provider-api-limit", count=1000),
            make_alert(tie, "service-provider-call-limit", count=500),
        ]
    acct = ACCOUNTS[owner]
    same_ms = _ms_time(rng, day)
    sub_ms = _ms_time(rng, day)
    # 9 fraction digits each, in one millisecond, in different microseconds
    apart = (int(rng.integers(50_000, 100_000)) * 10 + 7, int(rng.integers(0, 50_000)) * 10 + 3)
    micros = int(rng.integers(0, 8_640_000_000)) * 10 + int(rng.integers(1, 10))
    no_sp = day * DAY_NS + micros * 1000  # 6 fraction digits
    google, microsoft, deepgram = _VENDORS[0], _VENDORS[1], _VENDORS[3]
    return [
        *alerts,
        make_alert(
            midnight,
            "webhook-connection-failure",
            account_sid=acct,
            url=_URLS[1],
            detail="midnight",
        ),
        make_alert(same_ms, "webhook-failure", account_sid=acct, status=500),
        make_alert(same_ms, "tts-failure", account_sid=acct, vendor=microsoft[0]),
        make_alert(same_ms, "tts-failure", account_sid=acct, vendor=google[0], label=google[1]),
        *(
            make_alert(
                sub_ms + frac, "stt-failure", account_sid=acct, vendor=deepgram[0], label="nova"
            )
            for frac in apart  # the same tags below the millisecond: two points, not one
        ),
        make_alert(tie, "account-call-limit", account_sid=acct, count=50),
        make_alert(
            no_sp,
            "tts-failure",
            account_sid=acct,
            service_provider_sid=UNDEFINED,
            vendor=google[0],
            label=google[1],
        ),
    ]
