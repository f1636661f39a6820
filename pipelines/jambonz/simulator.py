"""A local jambonz RecentCalls server and CDR generator, for demos and tests.

It speaks RecentCalls as the deployed jambonz server does (see shared/docs/jambonz-recentcalls.md
and the captures in tests/fixtures/real-responses/): both routes, Bearer auth, the exact error
shapes, inclusive start/end bounds, attempt-time descending order, a total taken by a separate
count before the page, the rate-limit bucket with its headers, and fault knobs. It binds to
loopback unless told otherwise. It must never be imported by production code paths other than the
demo, and it never logs an API key (only the key's role).

How it is built:
- CDRs are generated lazily per (account, UTC day) from the seed, as numpy columns, and cached;
  a record becomes a dict only when it is served. Times are integer nanoseconds UTC so the
  inclusive bounds behave at nanosecond precision, as InfluxDB's do.
- A CDR is visible once its call ended plus a write buffer (<= 20 s): a day keeps filling after
  midnight while its long calls finish.
- The HTTP side is stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive; responses are
  written byte by byte so header order and bodies match the captures.

Run it by hand: `python -m pipelines.jambonz.simulator --port 8080 --seed 1 --calls-per-day 1000`.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import contextlib
import email.utils
import hashlib
import json
import logging
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from pipelines.jambonz.records import SERVER_KEYS

# Identities taken from the captures, so simulator answers look like the real server's.
SERVICE_PROVIDER_SID = "43a6715f-583b-41e0-a086-b4f8cc677771"
ACCOUNT_SID = "173c3dbf-acbb-4e31-9668-a4f3445cb971"  # account A
OTHER_ACCOUNT_SID = "5b2a1c7e-9d44-4f0e-8a6b-2f1e3d4c5b6a"  # account B, same service provider
ACCOUNT_KEY = "sim-account-key-0001"  # may read ACCOUNT_SID only
OTHER_ACCOUNT_KEY = "sim-account-key-0002"  # may read OTHER_ACCOUNT_SID only
SERVICE_PROVIDER_KEY = "sim-sp-key-0001"  # may read both accounts and the SP route
ADMIN_KEY = "sim-admin-key-0001"  # may read anything

Dialect = Literal["server", "docs"]

# The server's 21 keys come from records.SERVER_KEYS (re-exported here); the docs page's keys,
# in its order:
DOCS_KEYS: tuple[str, ...] = (
    "account_sid",
    "call_sid",
    "from",
    "to",
    "answered",
    "sip_status",
    "duration",
    "attempted_at",
    "terminated_at",
    "direction",
    "sip_call_id",
    "answered_at",
    "termination_reason",
    "host",
    "remote_host",
    "trunk",
)
UNANSWERED_SENTINEL = "1970-01-01T00:00:00.000Z"  # what the server sends as "never answered"
TRUNKS: tuple[str, ...] = ("twilio", "voxbone", "telnyx", "user", "sipUri", "Microsoft Teams")
WORST_TRUNK = "telnyx"  # answers ~40% where the others answer ~75%
TERMINATION_REASONS: tuple[str, ...] = (
    "caller hungup",
    "called party hungup",
    "failed",
    "caller abandoned",
)
APPLICATION_SIDS: tuple[str | None, ...] = (
    None,
    "0dddaabf-0a30-43e3-84e8-426873b1a78b",
    "a1b2c3d4-1111-4222-8333-944455556666",
)
ACCOUNTS: tuple[str, ...] = (ACCOUNT_SID, OTHER_ACCOUNT_SID)
KEYS: dict[str, tuple[str, str | None]] = {  # key -> (role, the sid it is scoped to)
    ACCOUNT_KEY: ("account", ACCOUNT_SID),
    OTHER_ACCOUNT_KEY: ("account", OTHER_ACCOUNT_SID),
    SERVICE_PROVIDER_KEY: ("service_provider", SERVICE_PROVIDER_SID),
    ADMIN_KEY: ("admin", None),
}

NS = 1_000_000_000
MS = 1_000_000
DAY_NS = 86_400 * NS
_AREAS = np.array([415, 617, 508, 212, 888, 646], dtype=np.int64)
_FAIL_CODES = np.array([486, 480, 487, 503, 603, 404], dtype=np.int16)
_FAIL_P = np.array([0.35, 0.2, 0.15, 0.1, 0.05, 0.15])
# Relative attempts per UTC hour: quiet nights, a business-hours plateau, an evening tail.
_HOUR_W = np.array(
    [1, 1, 1, 1, 1, 2, 3, 6, 10, 12, 12, 11, 10, 11, 12, 12, 11, 9, 6, 4, 3, 2, 2, 1], dtype=float
)
_HOUR_P = _HOUR_W / _HOUR_W.sum()
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:(?P<sep>[ T])(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})?)?$"
)
_DIGITS = re.compile(r"[0-9]+")
_ROUTE_RE = re.compile(r"^/v1/(Accounts|ServiceProviders)/([^/]+)/RecentCalls/?$")

_HELMET_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Origin-Agent-Cluster", "?1"),
    ("Referrer-Policy", "no-referrer"),
    ("Strict-Transport-Security", "max-age=15552000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-DNS-Prefetch-Control", "off"),
    ("X-Download-Options", "noopen"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Permitted-Cross-Domain-Policies", "none"),
    ("X-XSS-Protection", "0"),
    ("Surrogate-Control", "no-store"),
    ("Cache-Control", "no-store, no-cache, must-revalidate, proxy-revalidate"),
    ("Expires", "0"),
    ("Access-Control-Allow-Origin", "*"),
)
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
TOO_MANY = b"Too many requests, please try again later."
NON_JSON_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be right back</h1><p>The service is undergoing maintenance.</p>"
    b"</body></html>\n"
)

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Knobs a test turns on. Counters count down per affected RecentCalls request (any route)."""

    server_errors: int = 0  # next N requests answer 5xx
    server_error_status: int = 503
    server_error_html: bool = False  # HTML body instead of {"msg": ...}
    storm_429: int = 0  # next N requests answer 429 regardless of the bucket
    storm_429_retry_after: bool = True  # whether those 429s carry Retry-After
    retry_after_s: float = 1.0  # the Retry-After value sent with storm 429s
    # When set, storm 429s carry a spent bucket of their own (RateLimit-Remaining 0, -Reset this
    # many seconds) instead of the real one's: a proxy or a restarted limiter in front of jambonz.
    storm_429_reset_s: float | None = None
    slow_responses: int = 0  # next N requests wait slow_seconds before answering
    slow_seconds: float = 0.0
    truncated_bodies: int = 0  # next N 200 answers send half the body and close
    non_json_bodies: int = 0  # next N 200 answers send an HTML page with status 200
    reset_connections: int = 0  # next N requests: the socket is closed without an answer
    # Not a countdown: while > 0, every RecentCalls request lands N new (already ended) CDRs
    # inside its queried range, after its count and before its data query.
    landing_per_request: int = 0
    repeat_previous_page: int = 0  # next N pages > 1 repeat the records of the previous page
    short_pages: int = 0  # next N pages > 1 drop their last record (short page before the end)


# ---------------------------------------------------------------------------------------------
# time helpers


def to_ns(dt: datetime) -> int:
    """A timezone-aware datetime as integer nanoseconds since the epoch (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (truncated to microseconds)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)


def _base(ns: int) -> str:
    sec = ns // NS
    days, rem = divmod(sec, 86_400)
    d = datetime(1970, 1, 1) + timedelta(days=days)
    hms = f"{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{hms}"


def format_influx(ns: int) -> str:
    """RFC 3339 with trailing fraction zeros trimmed, as InfluxDB prints `time`."""
    frac = ns % NS
    if frac == 0:
        return _base(ns) + "Z"
    return _base(ns) + "." + f"{frac:09d}".rstrip("0") + "Z"


def format_ms(ns: int) -> str:
    """RFC 3339 with exactly 3 fraction digits, as jambonz writes answered_at/terminated_at."""
    return f"{_base(ns)}.{ns % NS // MS:03d}Z"


def parse_time_param(text: str) -> int | None:
    """A start/end query value as ns, or None when InfluxDB would not parse it.

    Accepts YYYY-MM-DD, `YYYY-MM-DD HH:MM:SS[.f]` and RFC 3339 with Z or an offset (up to 9
    fraction digits). A `+hh:mm` offset sent unencoded arrives as ` hh:mm` and is unparseable,
    as on the real server; so is an epoch number.
    """
    m = _TIME_RE.match(text)
    if m is None:
        return None
    g = m.groups()
    y, mo, d = int(g[0]), int(g[1]), int(g[2])
    hh = int(g[4]) if g[4] else 0
    mi = int(g[5]) if g[5] else 0
    ss = int(g[6]) if g[6] else 0
    if m.group("sep") == "T" and m.group("tz") is None:
        return None  # RFC 3339 needs a zone; InfluxQL refuses the bare T form
    try:
        datetime(y, mo, d, hh, mi, ss)
    except ValueError:
        return None
    ns = calendar.timegm((y, mo, d, hh, mi, ss, 0, 0, 0)) * NS
    if g[7]:
        ns += int(g[7].ljust(9, "0"))
    tz = m.group("tz")
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * NS
    return ns


def _parse_rfc3339_loose(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    return parse_time_param(value)


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw, version=4))


# ---------------------------------------------------------------------------------------------
# the CDR store


@dataclass
class _Block:
    """Columnar CDRs of one account (a generated day, or calls landed by the landing fault)."""

    acct: int
    attempted_ns: np.ndarray  # int64, ascending
    visible_ns: np.ndarray  # int64: terminated + write buffer
    outbound: np.ndarray  # bool
    trunk: np.ndarray  # int8 index into TRUNKS
    answered: np.ndarray  # bool
    answered_ms: np.ndarray  # int64 ms since epoch (meaningless if not answered)
    terminated_ms: np.ndarray  # int64
    duration: np.ndarray  # int64 whole seconds
    sip_status: np.ndarray  # int16
    reason: np.ndarray  # int8 index into TERMINATION_REASONS
    null_call_sid: np.ndarray  # bool
    parent: np.ndarray  # bool: outbound leg with an A-leg
    recorded: np.ndarray  # bool
    trace: np.ndarray  # int8: 0 zeros, 1 null, 2 random
    app: np.ndarray  # int8 index into APPLICATION_SIDS
    host: np.ndarray  # int8: 10.0.0.11 / 10.0.0.12
    remote: np.ndarray  # int32 packed 3.x.y.z
    sip_host: np.ndarray  # int32 packed 10.0.x.y
    from_num: np.ndarray  # int64
    to_num: np.ndarray  # int64
    plus: np.ndarray  # bool: inbound from arrives with its leading +
    float_dur: np.ndarray  # bool: the server sends duration as a float (752.0)
    extra: np.ndarray  # int8: 0 none, 1 cost, 2 billed_seconds (a field nobody has seen)
    ids: bytes  # 64 random bytes a record: call_sid, sip uuid, parent uuid, trace id
    _strings: tuple[list[str], list[str], list[str | None]] | None = field(default=None)

    def __len__(self) -> int:
        return int(self.attempted_ns.shape[0])

    def call_sid(self, i: int) -> str | None:
        if self.null_call_sid[i]:
            return None
        return _uuid(self.ids[i * 64 : i * 64 + 16])

    def from_to(self, i: int) -> tuple[str, str]:
        frm = str(int(self.from_num[i]))
        if self.plus[i]:
            frm = "+" + frm
        return frm, str(int(self.to_num[i]))

    def strings(self) -> tuple[list[str], list[str], list[str | None]]:
        """from, to and call_sid of every row, built once, for the `filter` regex."""
        if self._strings is None:
            ft = [self.from_to(i) for i in range(len(self))]
            self._strings = (
                [f for f, _ in ft],
                [t for _, t in ft],
                [self.call_sid(i) for i in range(len(self))],
            )
        return self._strings

    def record(self, i: int) -> dict[str, Any]:
        """Row i in the server dialect, 21 keys in the server's order (+ a rare new field)."""
        acct = ACCOUNTS[self.acct]
        call_sid = self.call_sid(i)
        base = i * 64
        sip_host = int(self.sip_host[i])
        sip_callid = (
            f"{_uuid(self.ids[base + 16 : base + 32])}@10.0.{sip_host >> 8}.{sip_host & 255}"
        )
        answered = bool(self.answered[i])
        att = int(self.attempted_ns[i])
        frm, to = self.from_to(i)
        duration: int | float = int(self.duration[i])
        if self.float_dur[i]:
            duration = float(duration)
        trace = int(self.trace[i])
        remote = int(self.remote[i])
        recording_url = None
        if self.recorded[i] and call_sid is not None:
            day = _base(att)[:10].replace("-", "/")
            recording_url = f"/Accounts/{acct}/RecentCalls/{call_sid}/record/{day}/mp3"
        rec: dict[str, Any] = {
            "attempted_at": format_influx(att),
            "account_sid": acct,
            "answered": answered,
            "answered_at": format_ms(int(self.answered_ms[i]) * MS)
            if answered
            else UNANSWERED_SENTINEL,
            "application_sid": APPLICATION_SIDS[int(self.app[i])],
            "call_sid": call_sid,
            "direction": "outbound" if self.outbound[i] else "inbound",
            "duration": duration,
            "from": frm,
            "host": "10.0.0.12" if self.host[i] else "10.0.0.11",
            "recording_url": recording_url,
            "remote_host": f"3.{remote >> 16}.{(remote >> 8) & 255}.{remote & 255}",
            "service_provider_sid": SERVICE_PROVIDER_SID,
            "sip_callid": sip_callid,
            "sip_parent_callid": f"{_uuid(self.ids[base + 32 : base + 48])}@10.0.0.1"
            if self.parent[i]
            else None,
            "sip_status": int(self.sip_status[i]),
            "terminated_at": format_ms(int(self.terminated_ms[i]) * MS),
            "termination_reason": TERMINATION_REASONS[int(self.reason[i])],
            "to": to,
            "trace_id": None
            if trace == 1
            else ("0" * 32 if trace == 0 else self.ids[base + 48 : base + 64].hex()),
            "trunk": TRUNKS[int(self.trunk[i])],
        }
        extra = int(self.extra[i])
        if extra == 1:
            rec["cost"] = round(0.0123 * max(1, int(self.duration[i])) / 60, 4)
        elif extra == 2:
            rec["billed_seconds"] = int(math.ceil(int(self.duration[i]) / 6) * 6)
        return rec


def make_block(
    rng: np.random.Generator, acct: int, attempted_ns: np.ndarray, *, end_cap_ns: int | None = None
) -> _Block:
    """Generate calls attempted at the given (ascending) times, all columns at once.

    end_cap_ns: calls must have ended by then (used for calls that land 'already ended'); an
    answered call that would still be running becomes an abandoned attempt.
    """
    n = int(attempted_ns.shape[0])
    outbound = rng.random(n) < 0.5
    trunk_in = rng.choice(np.array([0, 1, 2, 3], dtype=np.int8), n, p=[0.35, 0.2, 0.25, 0.2])
    trunk_out = rng.choice(np.array([0, 2, 4, 5], dtype=np.int8), n, p=[0.35, 0.25, 0.2, 0.2])
    trunk = np.where(outbound, trunk_out, trunk_in).astype(np.int8)
    p_answer = np.where(trunk == TRUNKS.index(WORST_TRUNK), 0.40, 0.76) + np.where(
        outbound, -0.03, 0.03
    )
    answered = rng.random(n) < p_answer
    ring_ms = np.where(answered, rng.integers(800, 15_000, n), rng.integers(200, 30_000, n)).astype(
        np.int64
    )
    # Talk time: lognormal (median ~2.5 min) plus a 1% tail of 1-3 hour calls, so some calls
    # attempted late in a day end after midnight and land in that day's window late.
    talk_ms = np.minimum(rng.lognormal(math.log(150_000), 1.1, n), 4 * 3_600_000).astype(np.int64)
    long_tail = rng.random(n) < 0.01
    talk_ms = np.where(long_tail, rng.integers(3_600_000, 3 * 3_600_000, n), talk_ms)
    buffer_ms = rng.integers(0, 20_001, n).astype(np.int64)
    fail_code = rng.choice(_FAIL_CODES, n, p=_FAIL_P)
    caller_hangs = rng.random(n) < 0.55
    r_null = rng.random(n)
    parent = outbound & (rng.random(n) < 0.5)
    r_rec = rng.random(n)
    r_trace = rng.random(n)
    app = rng.choice(np.array([0, 1, 2], dtype=np.int8), n, p=[0.4, 0.3, 0.3])
    host = rng.integers(0, 2, n).astype(np.int8)
    remote = rng.integers(0, 1 << 24, n).astype(np.int32)
    sip_host = rng.integers(0, 4 << 8, n).astype(np.int32)
    from_num = 10_000_000_000 + rng.choice(_AREAS, n) * 10_000_000 + rng.integers(0, 10_000_000, n)
    to_num = 10_000_000_000 + rng.choice(_AREAS, n) * 10_000_000 + rng.integers(0, 10_000_000, n)
    plus = ~outbound & (rng.random(n) < 0.3)
    float_dur = rng.random(n) < 1 / 200
    r_extra = rng.random(n)
    extra = np.where(r_extra < 1 / 1000, 1, np.where(r_extra < 2 / 1000, 2, 0)).astype(np.int8)
    ids = rng.bytes(64 * n)

    attempted_ms = attempted_ns // MS
    answered_ms = attempted_ms + ring_ms
    terminated_ms = np.where(answered, answered_ms + talk_ms, attempted_ms + ring_ms)
    if end_cap_ns is not None:
        cap_ms = end_cap_ns // MS
        running = terminated_ms > cap_ms
        answered = answered & ~running
        terminated_ms = np.where(running, np.maximum(attempted_ms, cap_ms), terminated_ms)
        fail_code = np.where(running, 487, fail_code)
        buffer_ms = np.zeros(n, dtype=np.int64)
    duration = np.where(answered, (terminated_ms - answered_ms) // 1000, 0)
    sip_status = np.where(answered, 200, fail_code).astype(np.int16)
    reason = np.where(
        answered, np.where(caller_hangs, 0, 1), np.where(sip_status == 487, 3, 2)
    ).astype(np.int8)
    # Inbound calls that fail before an application runs have no call_sid (a few % of all).
    null_call_sid = ~outbound & ~answered & (r_null < 0.2)
    recorded = answered & (r_rec < 0.06)
    trace = np.where(r_trace < 0.10, 1, np.where(r_trace < 0.13, 2, 0)).astype(np.int8)
    trace = np.where(null_call_sid, 1, trace).astype(np.int8)
    visible_ns = terminated_ms * MS + buffer_ms * MS
    if end_cap_ns is not None:
        visible_ns = np.minimum(visible_ns, end_cap_ns)
    return _Block(
        acct=acct,
        attempted_ns=attempted_ns.astype(np.int64),
        visible_ns=visible_ns.astype(np.int64),
        outbound=outbound,
        trunk=trunk,
        answered=answered,
        answered_ms=answered_ms.astype(np.int64),
        terminated_ms=terminated_ms.astype(np.int64),
        duration=duration.astype(np.int64),
        sip_status=sip_status,
        reason=reason,
        null_call_sid=null_call_sid,
        parent=parent,
        recorded=recorded,
        trace=trace,
        app=app,
        host=host,
        remote=remote,
        sip_host=sip_host,
        from_num=from_num.astype(np.int64),
        to_num=to_num.astype(np.int64),
        plus=plus,
        float_dur=float_dur,
        extra=extra,
        ids=ids,
    )


def generate_day(seed: int, acct: int, day: int, calls_per_day: int) -> _Block:
    """The calls of account `acct` attempted on UTC day number `day` (days since the epoch)."""
    rng = np.random.default_rng([seed, acct, day])
    n = int(rng.poisson(calls_per_day)) if calls_per_day > 0 else 0
    hours = rng.choice(24, n, p=_HOUR_P).astype(np.int64)
    ms_in_hour = rng.integers(0, 3_600_000, n).astype(np.int64)
    # Most attempts are stamped at ms precision; newer servers keep up to ns, so some do too.
    sub_ms = np.where(rng.random(n) < 0.05, rng.integers(0, MS, n), 0).astype(np.int64)
    attempted = day * DAY_NS + hours * 3600 * NS + ms_in_hour * MS + sub_ms
    attempted.sort()
    return make_block(rng, acct, attempted)


def to_docs(rec: dict[str, Any]) -> dict[str, Any]:
    """A server-dialect record in the docs page's shape: epoch seconds, sip_call_id, its order."""
    out: dict[str, Any] = {}
    for key in DOCS_KEYS:
        src = "sip_callid" if key == "sip_call_id" else key
        if src not in rec:
            continue
        value = rec[src]
        if key in ("attempted_at", "terminated_at", "answered_at"):
            if key == "answered_at" and value == UNANSWERED_SENTINEL:
                value = None
            else:
                ns = _parse_rfc3339_loose(value)
                value = value if ns is None else ns // NS
        elif key in ("duration", "sip_status") and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    for key, value in rec.items():
        if key not in SERVER_KEYS and key not in out:
            out[key] = value  # fields nobody has seen yet travel in both dialects
    return out


@dataclass
class _Query:
    accounts: tuple[int, ...]
    lo_ns: int | None = None  # inclusive
    hi_ns: int | None = None  # inclusive
    answered: bool | None = None
    direction: str | None = None
    trunk: str | None = None
    regex: re.Pattern[str] | None = None
    filter_text: str | None = None
    nothing: bool = False  # an unparseable start/end: InfluxDB matches no row


@dataclass
class _Hits:
    """Matching records in answer order, as (source, row) pairs kept in arrays until served."""

    sources: list[object]
    src: np.ndarray
    row: np.ndarray

    @classmethod
    def none(cls) -> _Hits:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def serve(self, sim: Simulator, start: int, stop: int | None) -> list[dict[str, Any]]:
        return [
            sim._serve((self.sources[s], r))
            for s, r in zip(
                self.src[start:stop].tolist(), self.row[start:stop].tolist(), strict=True
            )
        ]


@dataclass
class _Raw:
    """An injected record, positioned in time and owned by one account."""

    acct: int
    at_ns: int
    record: dict[str, Any]


class _Bucket:
    """express-rate-limit's fixed window: one shared counter, reset when the window ends."""

    def __init__(self, limit: int, window_s: float, *, start_now: bool) -> None:
        self.limit = limit
        self.window_s = window_s
        self.hits = 0
        self.reset_at: float | None = time.monotonic() + window_s if start_now else None

    def _roll(self, now: float) -> None:
        if self.reset_at is None or now >= self.reset_at:
            self.hits = 0
            self.reset_at = now + self.window_s

    def hit(self, n: int = 1) -> tuple[bool, int, int]:
        """Count n requests; (allowed, remaining, seconds until reset)."""
        now = time.monotonic()
        self._roll(now)
        self.hits += n
        assert self.reset_at is not None
        reset = max(0, math.ceil(self.reset_at - now))
        return self.hits <= self.limit, max(0, self.limit - self.hits), reset

    def headers(self, remaining: int, reset: int) -> list[tuple[str, str]]:
        return [
            ("RateLimit-Policy", f"{self.limit};w={math.ceil(self.window_s)}"),
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(remaining)),
            ("RateLimit-Reset", str(reset)),
        ]


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncate: bool = False
    reset: bool = False


def _etag(body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode()
    return f'W/"{len(body):x}-{digest[:27]}"'


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class Simulator:
    """A RecentCalls server on 127.0.0.1 (a free port unless `port` is given).

    Args:
        seed: makes every generated CDR deterministic.
        calls_per_day: average attempts per account per UTC day (a daily curve shapes the hours).
        dialect: "server" (what jambonz sends) or "docs" (what its docs page shows).
        rate_limit: (limit, window_seconds) of the one shared bucket; None sends no RateLimit
            headers and never answers 429 (a self-hosted server without a limiter).
        now: the simulator clock's start; None = the machine's clock, running. A CDR is visible
            once its call ended (terminated_at + buffer <= clock).
        retention_days: calls attempted before clock - retention are gone from the API.
        host, port: where to listen; host defaults to 127.0.0.1.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_day: int = 1000,
        dialect: Dialect = "server",
        rate_limit: tuple[int, float] | None = (600, 300.0),
        now: datetime | None = None,
        retention_days: int = 30,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if dialect not in ("server", "docs"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.seed = seed
        self.calls_per_day = calls_per_day
        self.dialect: Dialect = dialect
        self.retention_days = retention_days
        self.host = host
        self.port = port
        self.faults = Faults()
        self._lock = threading.RLock()
        self._bucket = (
            None if rate_limit is None else _Bucket(rate_limit[0], rate_limit[1], start_now=False)
        )
        # The CDR clock: base_ns, advanced by the monotonic clock unless frozen.
        if now is None:
            self._clock_base_ns = time.time_ns()
            self._clock_anchor: int | None = time.monotonic_ns()
        else:
            self._clock_base_ns = to_ns(now)
            self._clock_anchor = None
        self._days: dict[tuple[int, int], _Block] = {}
        self._landed: list[_Block] = []
        self._raw: list[_Raw] = []
        self._landings = 0
        self._log: list[dict[str, Any]] = []
        self._count_429 = 0
        self._connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle
    def start(self) -> Simulator:  # serve in a background thread; returns self
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"jambonz-simulator-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in slow_responses
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:  # e.g. "http://127.0.0.1:54321"
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    # knobs
    faults: Faults

    @property
    def now(self) -> datetime:
        """The simulator clock (what `days` counts back from and visibility is judged against)."""
        return from_ns(self.clock_ns())

    def clock_ns(self) -> int:
        with self._lock:
            if self._clock_anchor is None:
                return self._clock_base_ns
            return self._clock_base_ns + time.monotonic_ns() - self._clock_anchor

    def set_clock(self, now: datetime, *, frozen: bool = True) -> None:
        """Set the clock; frozen=True stops it until the next set/advance."""
        with self._lock:
            self._clock_base_ns = to_ns(now)
            self._clock_anchor = None if frozen else time.monotonic_ns()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock_base_ns += round(seconds * NS)

    def set_rate_limit(self, limit: int, window_s: float) -> None:
        """Replace the bucket (a fresh, full window starts now)."""
        with self._lock:
            self._bucket = _Bucket(limit, window_s, start_now=True)

    def consume(self, n: int) -> None:
        """Spend n requests of the bucket as another client (the operator's web UI) would."""
        with self._lock:
            if self._bucket is not None:
                self._bucket.hit(n)

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Inject raw records as stored (server-dialect shape, attempted_at as RFC 3339 string).

        For malformed-record and edge-time tests; they are served verbatim in the server dialect
        (converted where possible in the docs dialect). Optional private keys, stripped when
        served: `_at` (datetime) positions a record whose attempted_at is missing or junk;
        `_account_sid` owns it to an account when account_sid is missing or junk. Injected
        records are visible at once and count for ground truth.
        """
        with self._lock:
            for rec in records:
                at = rec.get("_at")
                at_ns = to_ns(at) if isinstance(at, datetime) else None
                if at_ns is None:
                    at_ns = _parse_rfc3339_loose(rec.get("attempted_at"))
                if at_ns is None:
                    raise ValueError("an injected record needs a parseable attempted_at or `_at`")
                owner = rec.get("_account_sid", rec.get("account_sid"))
                acct = ACCOUNTS.index(owner) if owner in ACCOUNTS else 0
                self._raw.append(_Raw(acct, at_ns, dict(rec)))

    # ground truth for tests
    def calls(
        self, sid: str, start: datetime, end: datetime, *, route: str = "account"
    ) -> list[dict[str, Any]]:
        """Every record visible now with start <= attempted_at < end, as the API would send it.

        route: "account" (sid = account sid) or "service_provider".
        """
        accounts: tuple[int, ...]
        if route == "account":
            accounts = (ACCOUNTS.index(sid),) if sid in ACCOUNTS else ()
        elif route == "service_provider":
            accounts = tuple(range(len(ACCOUNTS))) if sid == SERVICE_PROVIDER_SID else ()
        else:
            raise ValueError(f"unknown route {route!r}")
        with self._lock:
            q = _Query(accounts, lo_ns=to_ns(start), hi_ns=to_ns(end) - 1)
            return self._select(q).serve(self, 0, None)

    # observation
    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One entry per RecentCalls request: {path, params, status, remaining}.

        Also `role` (of the key, never the key), `fault` (the fault that answered, if any) and
        `total`/`returned` for 200 answers.
        """
        with self._lock:
            return [dict(e) for e in self._log]

    @property
    def count_429(self) -> int:
        with self._lock:
            return self._count_429

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (keep-alive reuse shows as fewer than requests)."""
        with self._lock:
            return self._connections

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    # ------------------------------------------------------------------------------------------
    # the store

    def _day(self, acct: int, day: int) -> _Block:
        key = (acct, day)
        block = self._days.get(key)
        if block is None:
            block = generate_day(self.seed, acct, day, self.calls_per_day)
            self._days[key] = block
        return block

    def _bounds(self, q: _Query, clock: int) -> tuple[int, int]:
        """The attempt-time range worth looking at: the query's, inside retention and the clock."""
        lo = clock - self.retention_days * DAY_NS
        hi = clock
        if q.lo_ns is not None:
            lo = max(lo, q.lo_ns)
        if q.hi_ns is not None:
            hi = min(hi, q.hi_ns)
        return lo, hi

    def _select(self, q: _Query, *, ordered: bool = True) -> _Hits:
        """Matching visible records as (source, index), attempt time descending."""
        if q.nothing or not q.accounts:
            return _Hits.none()
        clock = self.clock_ns()
        lo, hi = self._bounds(q, clock)
        if lo > hi:
            return _Hits.none()
        sources: list[object] = []
        times: list[np.ndarray] = []
        src_ids: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        blocks: list[_Block] = [
            self._day(acct, day)
            for acct in q.accounts
            for day in range(lo // DAY_NS, hi // DAY_NS + 1)
        ]
        blocks += [b for b in self._landed if b.acct in q.accounts]
        for block in blocks:
            att = block.attempted_ns
            i0 = int(np.searchsorted(att, lo, side="left"))
            i1 = int(np.searchsorted(att, hi, side="right"))
            if i0 >= i1:
                continue
            sl = slice(i0, i1)
            mask = block.visible_ns[sl] <= clock
            if q.answered is not None:
                mask &= block.answered[sl] == q.answered
            if q.direction == "outbound":
                mask &= block.outbound[sl]
            elif q.direction == "inbound":
                mask &= ~block.outbound[sl]
            elif q.direction is not None:
                mask &= False  # exact match on a value no call has
            if q.trunk is not None:
                if q.trunk in TRUNKS:
                    mask &= block.trunk[sl] == TRUNKS.index(q.trunk)
                else:
                    mask &= False
            idx = np.nonzero(mask)[0] + i0
            if q.regex is not None and idx.size:
                froms, tos, sids = block.strings()
                pat, text = q.regex, q.filter_text
                idx = np.array(
                    [
                        i
                        for i in idx.tolist()
                        if pat.search(froms[i]) or pat.search(tos[i]) or sids[i] == text
                    ],
                    dtype=np.int64,
                )
            if idx.size:
                sources.append(block)
                times.append(att[idx])
                src_ids.append(np.full(idx.size, len(sources) - 1, dtype=np.int64))
                rows.append(idx.astype(np.int64))
        raw_hits = [
            (r.at_ns, i)
            for i, r in enumerate(self._raw)
            if r.acct in q.accounts and lo <= r.at_ns <= hi and self._raw_matches(r.record, q)
        ]
        if raw_hits:
            sources.append(self._raw)
            times.append(np.array([t for t, _ in raw_hits], dtype=np.int64))
            src_ids.append(np.full(len(raw_hits), len(sources) - 1, dtype=np.int64))
            rows.append(np.array([i for _, i in raw_hits], dtype=np.int64))
        if not times:
            return _Hits.none()
        t = np.concatenate(times)
        s = np.concatenate(src_ids)
        r = np.concatenate(rows)
        if not ordered:  # a count needs no order
            return _Hits(sources, s, r)
        order = np.argsort(-t, kind="stable")
        return _Hits(sources, s[order], r[order])

    @staticmethod
    def _raw_matches(rec: dict[str, Any], q: _Query) -> bool:
        if q.answered is not None and rec.get("answered") is not q.answered:
            return False
        if q.direction is not None and rec.get("direction") != q.direction:
            return False
        if q.trunk is not None and rec.get("trunk") != q.trunk:
            return False
        if q.regex is not None:
            frm, to = rec.get("from"), rec.get("to")
            if not (
                (isinstance(frm, str) and q.regex.search(frm))
                or (isinstance(to, str) and q.regex.search(to))
                or rec.get("call_sid") == q.filter_text
            ):
                return False
        return True

    def _serve(self, ref: tuple[object, int]) -> dict[str, Any]:
        source, i = ref
        if isinstance(source, _Block):
            rec = source.record(i)
        else:
            raw = self._raw[i].record
            rec = {k: v for k, v in raw.items() if not k.startswith("_")}
        return to_docs(rec) if self.dialect == "docs" else rec

    def _land(self, q: _Query, n: int) -> None:
        """n calls land inside the queried range, already ended (the landing fault)."""
        if q.nothing or not q.accounts or n <= 0:
            return
        clock = self.clock_ns()
        lo, hi = self._bounds(q, clock)
        if lo > hi:
            return
        self._landings += 1
        rng = np.random.default_rng([self.seed, 0x1A4D, self._landings])
        attempted = np.sort(rng.integers(lo, hi + 1, n, dtype=np.int64))
        accts = rng.choice(np.array(q.accounts, dtype=np.int64), n)
        for acct in sorted(set(accts.tolist())):
            self._landed.append(
                make_block(rng, int(acct), attempted[accts == acct], end_cap_ns=clock)
            )

    # ------------------------------------------------------------------------------------------
    # the API

    def _take_fault(self, name: str) -> bool:
        left = getattr(self.faults, name)
        if left > 0:
            setattr(self.faults, name, left - 1)
            return True
        return False

    def handle(self, path: str, auth: str | None) -> _Response:
        """Answer one GET: rate limit, faults, auth, validation, count, (landing), data."""
        split = urlsplit(path)
        route = _ROUTE_RE.match(split.path)
        query = parse_qs(split.query, keep_blank_values=True)  # '+' decodes to ' ', as in express
        params = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        with self._lock:
            rl_headers: list[tuple[str, str]] = []
            remaining: int | None = None
            limited = False
            if self._bucket is not None:
                allowed, remaining, reset = self._bucket.hit()
                rl_headers = self._bucket.headers(remaining, reset)
                if not allowed:
                    limited = True
                    rl_headers.append(("Retry-After", str(reset)))
            entry: dict[str, Any] = {
                "path": split.path,
                "params": params,
                "status": 0,
                "remaining": remaining,
                "role": None,
                "fault": None,
            }
            if route is not None:
                self._log.append(entry)
        if limited:
            return self._finish(entry, self._too_many(rl_headers, express=True))
        if route is None:
            body = (
                f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET {split.path}</pre>\n"
                f"</body>\n</html>\n"
            ).encode()
            return _Response(
                404, [*rl_headers, *_HELMET_HEADERS, ("Content-Type", HTML_TYPE)], body
            )

        # Faults stand in for the infrastructure in front of the API, so they come before auth.
        with self._lock:
            reset_conn = self._take_fault("reset_connections")
            slow = (
                0.0
                if reset_conn or not self._take_fault("slow_responses")
                else self.faults.slow_seconds
            )
        if reset_conn:
            entry["fault"] = "reset_connections"
            return self._finish(entry, _Response(0, [], b"", reset=True))
        if slow > 0:
            entry["fault"] = "slow_responses"
            self._stopping.wait(slow)
        with self._lock:
            if self._take_fault("storm_429"):
                entry["fault"] = "storm_429"
                headers = list(rl_headers)
                if self.faults.storm_429_reset_s is not None:
                    limit = self._bucket.limit if self._bucket is not None else 600
                    headers = [
                        ("RateLimit-Limit", str(limit)),
                        ("RateLimit-Remaining", "0"),
                        ("RateLimit-Reset", str(math.ceil(self.faults.storm_429_reset_s))),
                    ]
                if self.faults.storm_429_retry_after:
                    headers.append(("Retry-After", _retry_after(self.faults.retry_after_s)))
                return self._finish(entry, self._too_many(headers, express=False))
            if self._take_fault("server_errors"):
                entry["fault"] = "server_errors"
                return self._finish(entry, self._server_error(rl_headers))

        response = self._api(route, params, query, auth, entry, rl_headers)
        if response.status == 200:
            with self._lock:
                if self._take_fault("truncated_bodies"):
                    entry["fault"] = "truncated_bodies"
                    response.truncate = True
                elif self._take_fault("non_json_bodies"):
                    entry["fault"] = "non_json_bodies"
                    response = _Response(
                        200,
                        [*rl_headers, *_HELMET_HEADERS, ("Content-Type", HTML_TYPE)],
                        NON_JSON_PAGE,
                    )
        return self._finish(entry, response)

    def _finish(self, entry: dict[str, Any], response: _Response) -> _Response:
        with self._lock:
            entry["status"] = response.status
            if response.status == 429:
                self._count_429 += 1
        log.debug(
            "RecentCalls %s role=%s -> %s%s",
            entry["path"],
            entry["role"],
            response.status,
            f" ({entry['fault']})" if entry["fault"] else "",
        )
        return response

    @staticmethod
    def _too_many(headers: list[tuple[str, str]], *, express: bool) -> _Response:
        lead = [("X-Powered-By", "Express")] if express else []
        return _Response(429, [*lead, *headers, ("Content-Type", HTML_TYPE)], TOO_MANY)

    def _server_error(self, rl_headers: list[tuple[str, str]]) -> _Response:
        status = self.faults.server_error_status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server Error"
        if self.faults.server_error_html:
            body = (
                f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                f"</body>\r\n</html>\r\n"
            ).encode()
            return _Response(status, [*rl_headers, ("Content-Type", "text/html")], body)
        return _json(status, rl_headers, {"msg": phrase})

    def _api(
        self,
        route: re.Match[str],
        params: dict[str, Any],
        query: dict[str, list[str]],
        auth: str | None,
        entry: dict[str, Any],
        rl_headers: list[tuple[str, str]],
    ) -> _Response:
        kind, sid = route.group(1), route.group(2)
        token = None
        if auth is not None:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        identity = KEYS.get(token) if token else None
        if identity is None:
            return _Response(
                401,
                [
                    *rl_headers,
                    *_HELMET_HEADERS,
                    ("WWW-Authenticate", 'Bearer realm="Users", error="invalid_token"'),
                ],
                b"Unauthorized",
            )
        role, scope = identity
        entry["role"] = role
        forbidden = {"status": "fail", "message": "insufficient privileges"}
        if kind == "ServiceProviders":
            if role == "account" or (
                role == "service_provider" and _UUID_RE.match(sid) and sid != scope
            ):
                return _json(403, rl_headers, forbidden)
            if not _UUID_RE.match(sid):
                return _json(400, rl_headers, {"msg": "Bad request"})
            accounts = tuple(range(len(ACCOUNTS))) if sid == SERVICE_PROVIDER_SID else ()
        else:
            if not _UUID_RE.match(sid):
                if role == "account":
                    return _json(
                        400, rl_headers, {"status": "fail", "message": "invalid AccountsSid format"}
                    )
                return _json(400, rl_headers, {"msg": "Bad request"})
            if role == "account" and sid != scope:
                return _json(403, rl_headers, forbidden)
            accounts = (ACCOUNTS.index(sid),) if sid in ACCOUNTS else ()

        page_raw = query.get("page", [""])[0]
        if not _DIGITS.fullmatch(page_raw) or int(page_raw) < 1:
            return _json(400, rl_headers, {"msg": 'missing or invalid "page" query arg'})
        counts = query.get("count", [])
        count_raw = counts[0] if counts else ""
        # A repeated count reaches the check as an array and slips past it, as on the server.
        if not _DIGITS.fullmatch(count_raw) or (len(counts) == 1 and int(count_raw) > 500):
            return _json(400, rl_headers, {"msg": 'missing or invalid "count" query arg'})
        page, count = int(page_raw), int(count_raw)

        q = _Query(accounts)
        answered = query.get("answered", [None])[0]
        if answered in ("true", "false"):
            q.answered = answered == "true"
        q.direction = query.get("direction", [None])[0]
        q.trunk = query.get("trunk", [None])[0]
        filt = query.get("filter", [None])[0]
        if filt:
            try:
                q.regex = re.compile(filt)
            except re.error as exc:
                return _json(500, rl_headers, {"msg": _influx_regex_error(filt, exc)})
            q.filter_text = filt
        days_raw = query.get("days", [""])[0]
        if _DIGITS.fullmatch(days_raw) and int(days_raw) > 0:
            # `time > now() - Nd`: exclusive, so the inclusive lower bound is one ns later.
            q.lo_ns = self.clock_ns() - int(days_raw) * DAY_NS + 1
        else:
            for name in ("start", "end"):
                if name in query:
                    ns = parse_time_param(query[name][0])
                    if ns is None:
                        q.nothing = True
                    elif name == "start":
                        q.lo_ns = ns
                    else:
                        q.hi_ns = ns

        with self._lock:
            # The server counts first, then reads the page: the two are not atomic.
            total = len(self._select(q, ordered=False))
            self._land(q, self.faults.landing_per_request)
            if self.faults.landing_per_request > 0:
                entry["fault"] = "landing_per_request"
            offset = (page - 1) * count
            short = False
            if page > 1 and self._take_fault("repeat_previous_page"):
                entry["fault"] = "repeat_previous_page"
                offset = (page - 2) * count
            elif page > 1 and self._take_fault("short_pages"):
                entry["fault"] = "short_pages"
                short = True
            hits = self._select(q)
            stop = None if count == 0 else offset + count
            if short:
                stop = max(offset, min(len(hits), stop if stop is not None else len(hits)) - 1)
            data = hits.serve(self, offset, stop)
            entry["total"] = total
            entry["returned"] = len(data)
        if self.dialect == "docs":
            envelope: dict[str, Any] = {
                "total": total,
                "batch": len(data),
                "page": page,
                "data": data,
            }
        else:
            envelope = {"total": total, "page_size": count_raw, "page": page_raw, "data": data}
        return _json(200, rl_headers, envelope)


def _json(status: int, rl_headers: list[tuple[str, str]], obj: Any) -> _Response:
    body = _dumps(obj)
    return _Response(status, [*rl_headers, *_HELMET_HEADERS, ("Content-Type", JSON_TYPE)], body)


def _influx_regex_error(filt: str, exc: re.error) -> str:
    """The 500 body jambonz relays when InfluxDB cannot parse `=~ /.*<filter>.*/` (capture 43)."""
    # Go's regexp words it differently from Python's; the common case (a leading `+`, as in
    # an encoded +1508) is reproduced exactly, the rest carry Python's reason.
    if filt[:1] in ("+", "*", "?"):
        what = f"invalid nested repetition operator: `*{filt[0]}`"
    else:
        what = exc.msg
    detail = f"error parsing query: error parsing regexp: {what} at line 1, char 83"
    return (
        "A 400 Bad Request error occurred: "
        + json.dumps({"error": detail}, separators=(",", ":"))
        + "\n"
    )


# ---------------------------------------------------------------------------------------------
# HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-answer on purpose in fault tests; that is not an error here.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # the keep-alive timeout the real server advertises
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sim._connected()

    def do_GET(self) -> None:
        response = self.server.sim.handle(self.path, self.headers.get("Authorization"))
        if response.reset:
            self._reset()
            return
        keep_alive = not self.close_connection and not response.truncate
        headers = list(response.headers)
        date = email.utils.formatdate(usegmt=True)
        if response.status == 401:
            headers += [("Date", date), *self._connection(keep_alive)]
            headers.append(("Content-Length", str(len(response.body))))
        else:
            headers.append(("Content-Length", str(len(response.body))))
            headers.append(("ETag", _etag(response.body)))
            headers += [("Date", date), *self._connection(keep_alive)]
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        head = f"HTTP/1.1 {response.status} {phrase}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        body = response.body[: len(response.body) // 2] if response.truncate else response.body
        self.wfile.write(head.encode("latin-1") + body)
        self.wfile.flush()
        if not keep_alive:
            self.close_connection = True

    @staticmethod
    def _connection(keep_alive: bool) -> list[tuple[str, str]]:
        if keep_alive:
            return [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")]
        return [("Connection", "close")]

    def _reset(self) -> None:
        # SO_LINGER 0: the close sends RST, as a crashed proxy or a killed worker would. Closing
        # here (the fd really goes once rfile is closed) keeps the server from sending FIN first.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


# ---------------------------------------------------------------------------------------------
# command line


def _parse_rate_limit(text: str) -> tuple[int, float]:
    limit, _, window = text.partition("/")
    try:
        return int(limit), float(window or 300)
    except ValueError:
        raise argparse.ArgumentTypeError("expected LIMIT/WINDOW_SECONDS, e.g. 600/300") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.jambonz.simulator",
        description="Serve synthetic jambonz RecentCalls on loopback until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls-per-day", type=int, default=1000)
    parser.add_argument("--dialect", choices=("server", "docs"), default="server")
    parser.add_argument("--retention-days", type=int, default=30)
    parser.add_argument("--now", help="freeze the CDR clock at this RFC 3339 time (default: run)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rate-limit", type=_parse_rate_limit, default=(600, 300.0))
    group.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args(argv)
    now = None
    if args.now:
        ns = parse_time_param(args.now)
        if ns is None:
            parser.error(f"--now: cannot parse {args.now!r}")
        now = from_ns(ns)
    sim = Simulator(
        seed=args.seed,
        calls_per_day=args.calls_per_day,
        dialect=args.dialect,
        rate_limit=None if args.no_rate_limit else args.rate_limit,
        now=now,
        retention_days=args.retention_days,
        host=args.host,
        port=args.port,
    )
    # SIGTERM ends the process the same orderly way as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    stop = threading.Event()
    with sim:
        _print_banner(sim, args.rate_limit if not args.no_rate_limit else None)
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_banner(sim: Simulator, rate_limit: tuple[int, float] | None) -> None:
    limit = "none" if rate_limit is None else f"{rate_limit[0]} per {rate_limit[1]:g}s"
    lines: Iterable[str] = (
        f"jambonz simulator listening on {sim.base_url} (dialect {sim.dialect}, seed {sim.seed}, "
        f"{sim.calls_per_day} calls/day/account)",
        f"  rate limit:            {limit}",
        f"  service provider sid:  {SERVICE_PROVIDER_SID}",
        f"  account sid:           {ACCOUNT_SID}",
        f"  other account sid:     {OTHER_ACCOUNT_SID}",
        f"  account key:           {ACCOUNT_KEY}",
        f"  other account key:     {OTHER_ACCOUNT_KEY}",
        f"  service provider key:  {SERVICE_PROVIDER_KEY}",
        f"  admin key:             {ADMIN_KEY}",
        f"  try: curl -H 'Authorization: Bearer {ACCOUNT_KEY}' "
        f"'{sim.base_url}/v1/Accounts/{ACCOUNT_SID}/RecentCalls?page=1&count=5'",
    )
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
