"""The simulator's data: its clock's units, who it knows, and the synthetic CDRs in both dialects.

- Time is integer nanoseconds UTC (InfluxDB compares at ns precision with inclusive bounds); text
  only at the edges: `format_influx` (attempted_at), `format_ms` (answered_at/terminated_at),
  `parse_time_param` (a start/end query value, refused where InfluxDB would refuse it).
- Who: one service provider, its two accounts (sids from the captures) and four fake API keys
  with roles. Never a real credential.
- `generate_day` draws one account's UTC day at once into a columnar `_Block`, whose `record(i)`
  makes a row a dict only when it is served (server dialect); `to_docs` gives the docs dialect.
- Costs (`@jambonz/time-series` 0.5.0): a call over the managed carrier RATED_TRUNK (about a
  third of calls) carries `cost`, `rate` and `billed_seconds` after the 21 keys, from
  `call_cost`, a pure function of the call's direction, answer and duration; other calls lack
  the keys. Off (`costs=False`), the records are those of a server before 0.5.0; on or off, no
  other field of any call changes.

The same seed always gives the same calls: no I/O, no clock, no state between calls.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import numpy as np

from pipelines.jambonz.streams import SERVER_KEYS

NS = 1_000_000_000
MS = 1_000_000
DAY_NS = 86_400 * NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:(?P<sep>[ T])(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})?)?$"
)


def to_ns(dt: datetime) -> int:
    """A datetime as integer nanoseconds since the epoch (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1_000


def from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def _base(ns: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(seconds=ns // NS)).isoformat()


def format_influx(ns: int) -> str:
    """RFC 3339 with trailing fraction zeros trimmed, as InfluxDB prints `time`."""
    frac = f"{ns % NS:09d}".rstrip("0")
    return f"{_base(ns)}.{frac}Z" if frac else f"{_base(ns)}Z"


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
    if m is None or (m["sep"] == "T" and m["tz"] is None):
        return None  # RFC 3339 needs a zone; InfluxQL refuses the bare T form
    y, mo, d, _, hh, mi, ss, frac, _ = m.groups("0")
    try:
        ns = to_ns(datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss)))
    except ValueError:
        return None
    ns += int(frac.ljust(9, "0"))
    tz = m["tz"] or "Z"
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * NS
    return ns


SERVICE_PROVIDER_SID = "43a6715f-583b-41e0-a086-b4f8cc677771"
ACCOUNT_SID = "173c3dbf-acbb-4e31-9668-a4f3445cb971"  # account A
OTHER_ACCOUNT_SID = "5b2a1c7e-9d44-4f0e-8a6b-2f1e3d4c5b6a"  # account B, same service provider
ACCOUNT_KEY = "sim-account-key-0001"  # may read ACCOUNT_SID only
OTHER_ACCOUNT_KEY = "sim-account-key-0002"  # may read OTHER_ACCOUNT_SID only
SERVICE_PROVIDER_KEY = "sim-sp-key-0001"  # may read both accounts and the SP route
ADMIN_KEY = "sim-admin-key-0001"  # may read anything

ACCOUNTS: tuple[str, ...] = (ACCOUNT_SID, OTHER_ACCOUNT_SID)
KEYS: dict[str, tuple[str, str | None]] = {  # key -> (role, the sid it is scoped to)
    ACCOUNT_KEY: ("account", ACCOUNT_SID),
    OTHER_ACCOUNT_KEY: ("account", OTHER_ACCOUNT_SID),
    SERVICE_PROVIDER_KEY: ("service_provider", SERVICE_PROVIDER_SID),
    ADMIN_KEY: ("admin", None),
}


Dialect = Literal["server", "docs"]

# The server's 21 keys come from records.SERVER_KEYS (the package re-exports it); the docs
# page's keys, in its order:
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
RATED_TRUNK = "twilio"  # the managed carrier jambonz rates: ~35% of calls, both directions
COST_KEYS: tuple[str, ...] = ("cost", "rate", "billed_seconds")
# direction -> (rate in currency units a minute, billing increment in seconds)
_RATES: dict[str, tuple[float, int]] = {"outbound": (0.013, 6), "inbound": (0.0085, 60)}
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
_AREAS = np.array([415, 617, 508, 212, 888, 646], dtype=np.int64)
# far ends abroad, their last four digits drawn (numbers libphonenumber holds valid): GB, DE,
# MX, JM, FR, IN, and +882 (an international network: libphonenumber's non-geographic 001)
_ABROAD = np.array(
    [447400120000, 493012340000, 525512340000, 18765230000, 33140000000, 919812340000, 8823420000],
    dtype=np.int64,
)
_FAIL_CODES = np.array([486, 480, 487, 503, 603, 404], dtype=np.int16)
_FAIL_P = np.array([0.35, 0.2, 0.15, 0.1, 0.05, 0.15])
# Relative attempts per UTC hour: quiet nights, a business-hours plateau, an evening tail.
_HOUR_W = np.array(
    [1, 1, 1, 1, 1, 2, 3, 6, 10, 12, 12, 11, 10, 11, 12, 12, 11, 9, 6, 4, 3, 2, 2, 1], dtype=float
)
_HOUR_P = _HOUR_W / _HOUR_W.sum()


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw, version=4))


def call_cost(direction: str, answered: bool, duration: int) -> dict[str, Any]:
    """What the managed carrier billed a call: `cost`, `rate` (a minute), `billed_seconds`.

    billed_seconds: the duration rounded up to the direction's increment (6 s out, 60 s in), 0
    when unanswered; cost = rate * billed_seconds / 60 to 6 decimals, a whole number (0) sent as
    one, as JavaScript's JSON does.
    """
    rate, step = _RATES[direction]
    billed = math.ceil(duration / step) * step if answered else 0
    cost = round(rate * billed / 60, 6)
    return {
        "cost": int(cost) if cost.is_integer() else cost,
        "rate": rate,
        "billed_seconds": billed,
    }


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
    extra: np.ndarray  # int8: 0 none, 1 queue_seconds, 2 carrier_ref (keys nobody has seen)
    ids: bytes  # 64 random bytes a record: call_sid, sip uuid, parent uuid, trace id
    costs: bool = True  # calls over RATED_TRUNK carry COST_KEYS (a 0.5.0 server)

    def __len__(self) -> int:
        return int(self.attempted_ns.shape[0])

    def call_sid(self, i: int) -> str | None:
        return None if self.null_call_sid[i] else _uuid(self.ids[i * 64 : i * 64 + 16])

    def from_to(self, i: int) -> tuple[str, str]:
        frm = str(int(self.from_num[i]))
        return ("+" + frm if self.plus[i] else frm), str(int(self.to_num[i]))

    @cached_property
    def strings(self) -> tuple[list[str], list[str], list[str | None]]:
        """from, to and call_sid of every row, built once, for the `filter` regex."""
        ft = [self.from_to(i) for i in range(len(self))]
        return [f for f, _ in ft], [t for _, t in ft], [self.call_sid(i) for i in range(len(self))]

    def record(self, i: int) -> dict[str, Any]:
        """Row i in the server dialect, 21 keys in the server's order (+ a rare new field, or
        the costs of a rated call)."""
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
        duration = int(self.duration[i])
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
            "duration": float(duration) if self.float_dur[i] else duration,
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
        if self.costs and rec["trunk"] == RATED_TRUNK:
            rec.update(call_cost(rec["direction"], answered, duration))
        extra = int(self.extra[i])
        if extra == 1:  # keys nobody has seen yet (the warehouse keeps them in `extra`)
            rec["queue_seconds"] = math.ceil(duration / 6) * 6
        elif extra == 2:
            rec["carrier_ref"] = f"ref-{duration}"
        return rec


def make_block(
    rng: np.random.Generator,
    acct: int,
    attempted_ns: np.ndarray,
    *,
    end_cap_ns: int | None = None,
    costs: bool = True,
) -> _Block:
    """Generate calls attempted at the given (ascending) times, all columns at once.

    end_cap_ns: calls must have ended by then (used for calls that land 'already ended'); an
    answered call that would still be running becomes an abandoned attempt. costs: whether
    rated calls carry COST_KEYS (no draw depends on it).
    """
    n = int(attempted_ns.shape[0])
    outbound = rng.random(n) < 0.5
    trunk_in = rng.choice(np.array([0, 1, 2, 3], dtype=np.int8), n, p=[0.35, 0.2, 0.25, 0.2])
    trunk_out = rng.choice(np.array([0, 2, 4, 5], dtype=np.int8), n, p=[0.35, 0.25, 0.2, 0.2])
    trunk = np.where(outbound, trunk_out, trunk_in).astype(np.int8)
    p_answer = np.where(trunk == TRUNKS.index(WORST_TRUNK), 0.40, 0.76)
    answered = rng.random(n) < p_answer + np.where(outbound, -0.03, 0.03)
    ring_ms = np.where(answered, rng.integers(800, 15_000, n), rng.integers(200, 30_000, n))
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
    # the far end abroad for a share of calls (destinations by country): drawn last, from a
    # generator of their own, so every other value of a call is as it was
    far = np.random.default_rng(rng.integers(2**62))
    abroad = far.random(n) < 0.25
    foreign = far.choice(_ABROAD, n) + far.integers(0, 10**4, n)
    from_num = np.where(abroad & ~outbound, foreign, from_num)
    to_num = np.where(abroad & outbound, foreign, to_num)

    attempted_ms = attempted_ns // MS
    answered_ms = attempted_ms + ring_ms
    terminated_ms = np.where(answered, answered_ms + talk_ms, attempted_ms + ring_ms)
    visible_ns = (terminated_ms + buffer_ms) * MS
    if end_cap_ns is not None:  # no write buffer: the calls land already ended
        cap_ms = end_cap_ns // MS
        running = terminated_ms > cap_ms
        answered = answered & ~running
        terminated_ms = np.where(running, np.maximum(attempted_ms, cap_ms), terminated_ms)
        fail_code = np.where(running, 487, fail_code)
        visible_ns = np.minimum(terminated_ms * MS, end_cap_ns)
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
        costs=costs,
    )


def generate_day(
    seed: int, acct: int, day: int, calls_per_day: int, *, costs: bool = True
) -> _Block:
    """The calls of account `acct` attempted on UTC day number `day` (days since the epoch);
    costs: whether rated calls carry COST_KEYS."""
    rng = np.random.default_rng([seed, acct, day])
    n = int(rng.poisson(calls_per_day)) if calls_per_day > 0 else 0
    hours = rng.choice(24, n, p=_HOUR_P).astype(np.int64)
    ms_in_hour = rng.integers(0, 3_600_000, n).astype(np.int64)
    # Most attempts are stamped at ms precision; newer servers keep up to ns, so some do too.
    sub_ms = np.where(rng.random(n) < 0.05, rng.integers(0, MS, n), 0).astype(np.int64)
    attempted = day * DAY_NS + hours * 3600 * NS + ms_in_hour * MS + sub_ms
    attempted.sort()
    return make_block(rng, acct, attempted, costs=costs)


def to_docs(rec: dict[str, Any]) -> dict[str, Any]:
    """A server-dialect record in the docs page's shape: epoch seconds, sip_call_id, its order."""
    out: dict[str, Any] = {}
    for key in DOCS_KEYS:
        src = "sip_callid" if key == "sip_call_id" else key
        if src not in rec:
            continue
        value = rec[src]
        if key == "answered_at" and value == UNANSWERED_SENTINEL:
            value = None
        elif key in ("attempted_at", "terminated_at", "answered_at"):
            ns = parse_time_param(value) if isinstance(value, str) else None
            value = value if ns is None else ns // NS
        elif key in ("duration", "sip_status") and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    for key, value in rec.items():
        if key not in SERVER_KEYS and key not in out:
            out[key] = value  # fields nobody has seen yet travel in both dialects
    return out
