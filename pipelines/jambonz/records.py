"""API records (either dialect) -> rows of the `calls` table, or rejections.

The public surface (record_identity, Normalized, normalize, SURROGATE_PREFIX) is what the client,
the Dagster layer and the tests use. It never drops a record silently: every input record ends up
either as a row of `calls` (with its raw JSON in `raw`), as a row of `quarantine` (with a reason
naming the field and the problem), or as the loser of a duplicate (same call_key in one batch; the
latest terminated_at wins, ties broken by the canonical JSON, so the input order never matters).

Both dialects are accepted:
- the server's: RFC 3339 strings with 0..9 fraction digits and `Z` or an offset, `sip_callid`,
  `answered_at` = `1970-01-01T00:00:00.000Z` for "none";
- the docs': epoch seconds (int or float), `sip_call_id`.
Integers sent as floats (`752.0`) are integers; a non-integral float, a string, a bool or a value
out of int32 range in an integer column is a wrong type and the record is quarantined.

Columnar where it matters: this is the hot path of a sync. Each column is built with one list
comprehension and one Arrow conversion; only when a column fails to build are its values checked
one by one to find the bad records, which are quarantined, and the columns are built again from
the good ones. Knows nothing of HTTP, Dagster or DuckDB.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.tables import (
    CALL_COLUMN_NAMES,
    CALLS_SCHEMA,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    UTC_US,
)

SURROGATE_PREFIX = "nosid:"
INVALID_PREFIX = "invalid:"

UTC_NS = pa.timestamp("ns", tz="UTC")
_NONE = type(None)
_EPOCH_S_MAX = 253_402_300_800  # 10000-01-01: beyond it no TIMESTAMPTZ holds the value
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# The 21 keys the deployed server sends on every record, in its order (fact sheet).
SERVER_KEYS: tuple[str, ...] = (
    "attempted_at",
    "account_sid",
    "answered",
    "answered_at",
    "application_sid",
    "call_sid",
    "direction",
    "duration",
    "from",
    "host",
    "recording_url",
    "remote_host",
    "service_provider_sid",
    "sip_callid",
    "sip_parent_callid",
    "sip_status",
    "terminated_at",
    "termination_reason",
    "to",
    "trace_id",
    "trunk",
)

# Record keys some column holds (the docs page's `sip_call_id` too); every other key goes to
# `extra`.
KNOWN_KEYS = frozenset(SERVER_KEYS) | {"sip_call_id"}

_RFC3339_SECONDS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)


class _Rejects(Exception):
    """Records (by index) that cannot become rows, with the reason for each."""

    def __init__(self, reasons: dict[int, str]) -> None:
        super().__init__(f"{len(reasons)} rejected")
        self.reasons = reasons


def canonical_json(record: dict[str, Any]) -> str:
    """Sorted keys, compact: the same record always gives the same text."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def surrogate_key(sip: str, direction: object, epoch_s: int) -> str:
    """The call_key of a call without call_sid (see record_identity)."""
    return SURROGATE_PREFIX + _digest(f"{sip}|{direction}|{epoch_s}")


def _epoch_seconds(value: object) -> int | None:
    """attempted_at truncated to whole UTC seconds, either dialect; None when unparseable."""
    if type(value) is int:
        return value if 0 <= value < _EPOCH_S_MAX else None
    if type(value) is float:
        return math.floor(value) if math.isfinite(value) and 0 <= value < _EPOCH_S_MAX else None
    if type(value) is not str:
        return None
    m = _RFC3339_SECONDS.match(value)
    if m is not None:
        y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
        offset = 0
        if m.group(8):
            offset = (int(m.group(9)) * 60 + int(m.group(10))) * 60
            offset = offset if m.group(8) == "+" else -offset
        try:
            datetime(y, mo, d, h, mi, s)  # validates the fields
        except ValueError:
            return None
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - offset
    try:  # whatever else Arrow parses, normalize() parses too: stay consistent with it
        ns = pa.array([value], pa.string()).cast(UTC_NS).cast(pa.int64())[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return int(ns) // 1_000_000_000


def _sip_id(record: dict[str, Any]) -> Any:
    sip = record.get("sip_callid")
    return sip if sip is not None else record.get("sip_call_id")


def record_identity(record: dict[str, Any]) -> str:
    """The key a record will have in `calls` (call_key), computed cheaply from the raw record.

    call_sid when present; else SURROGATE_PREFIX + a hash of sip_callid (or sip_call_id),
    direction and attempted_at truncated to whole seconds (so both dialects agree); for a record
    with neither (or with an unparseable attempted_at) "invalid:" + a hash of its canonical JSON
    (it will be quarantined, but stays distinct).
    """
    sid = record.get("call_sid")
    if type(sid) is str and sid:
        return sid
    sip = _sip_id(record)
    if type(sip) is str and sip:
        secs = _epoch_seconds(record.get("attempted_at"))
        if secs is not None:
            return surrogate_key(sip, record.get("direction"), secs)
    return INVALID_PREFIX + _digest(canonical_json(record))


@dataclass
class Normalized:
    """One window's records, normalized."""

    calls: pa.Table  # schema warehouse.tables.CALLS_SCHEMA, synced_at filled with `synced_at`
    raw: pa.Table  # warehouse.tables.RAW_SCHEMA: the JSON text of each record in `calls`
    quarantine: pa.Table  # warehouse.tables.QUARANTINE_SCHEMA: rejected records and why


# --- column builders: values -> Arrow array, or ValueError/ArrowException on any bad value ---


def _str_array(vals: list[Any]) -> pa.Array:
    if not set(map(type, vals)) <= {str, _NONE}:
        raise ValueError("not a string")
    return pa.array(vals, pa.string())


def _bool_array(vals: list[Any]) -> pa.Array:
    if not set(map(type, vals)) <= {bool, _NONE}:
        raise ValueError("not a boolean")
    return pa.array(vals, pa.bool_())


def _int32_array(vals: list[Any]) -> pa.Array:
    types = set(map(type, vals))
    if float in types:
        vals = [int(v) if type(v) is float and v.is_integer() else v for v in vals]
        types = set(map(type, vals))
    if not types <= {int, _NONE}:
        raise ValueError("not an integer")
    return pa.array(vals, pa.int32())  # out of range raises


def _epoch_micros(v: int | float) -> int:
    if not 0 <= v < _EPOCH_S_MAX:
        raise ValueError("epoch seconds out of range")
    return v * 1_000_000 if type(v) is int else round(v * 1_000_000)


def _ts_array(vals: list[Any]) -> pa.Array:
    types = set(map(type, vals))
    if types <= {str, _NONE}:
        parsed = pa.array(vals, pa.string()).cast(UTC_NS)
        return pc.cast(parsed, UTC_US, safe=False)  # truncates nanoseconds
    if not types <= {str, int, float, _NONE}:
        raise ValueError("not a timestamp")
    strs = [v if type(v) is str else None for v in vals]
    micros = [None if v is None or type(v) is str else _epoch_micros(v) for v in vals]
    from_strs = pc.cast(pa.array(strs, pa.string()).cast(UTC_NS), UTC_US, safe=False)
    from_nums = pa.array(micros, pa.int64()).cast(UTC_US)
    return pc.coalesce(from_strs, from_nums)


_EXPECTED: dict[Callable[[list[Any]], pa.Array], str] = {
    _str_array: "a string",
    _bool_array: "a boolean",
    _int32_array: "a 32-bit integer",
    _ts_array: "an RFC 3339 timestamp or epoch seconds",
}

_Builder = Callable[[list[Any]], pa.Array]

# column -> (API key: read, and named in reasons; builder). sip_callid also reads sip_call_id.
_COLUMNS: tuple[tuple[str, str, _Builder], ...] = (
    ("call_sid", "call_sid", _str_array),
    ("account_sid", "account_sid", _str_array),
    ("service_provider_sid", "service_provider_sid", _str_array),
    ("application_sid", "application_sid", _str_array),
    ("direction", "direction", _str_array),
    ("from_number", "from", _str_array),
    ("to_number", "to", _str_array),
    ("answered", "answered", _bool_array),
    ("sip_status", "sip_status", _int32_array),
    ("duration", "duration", _int32_array),
    ("attempted_at", "attempted_at", _ts_array),
    ("answered_at", "answered_at", _ts_array),
    ("terminated_at", "terminated_at", _ts_array),
    ("termination_reason", "termination_reason", _str_array),
    ("host", "host", _str_array),
    ("remote_host", "remote_host", _str_array),
    ("trunk", "trunk", _str_array),
    ("sip_callid", "sip_callid", _str_array),
    ("sip_parent_callid", "sip_parent_callid", _str_array),
    ("trace_id", "trace_id", _str_array),
    ("recording_url", "recording_url", _str_array),
)


def _value_text(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _column(name: str, key: str, build: _Builder, records: list[dict[str, Any]]) -> pa.Array:
    getter = _sip_id if name == "sip_callid" else None
    vals = [getter(r) for r in records] if getter else [r.get(key) for r in records]
    try:
        return build(vals)
    except (ValueError, TypeError, OverflowError, pa.ArrowException):
        pass
    reasons: dict[int, str] = {}
    for i, v in enumerate(vals):
        try:
            build([v])
        except (ValueError, TypeError, OverflowError, pa.ArrowException):
            reasons[i] = f"{key}: {_value_text(v)} is not {_EXPECTED[build]}"
    if not reasons:  # pragma: no cover - a column that fails whole must fail for some value
        raise RuntimeError(f"column {name} failed to build but every value builds alone")
    raise _Rejects(reasons)


def _extra(record: dict[str, Any]) -> str | None:
    if record.keys() <= KNOWN_KEYS:  # the common case, without building a set
        return None
    keys = record.keys() - KNOWN_KEYS
    return json.dumps(
        {k: record[k] for k in sorted(keys)}, separators=(",", ":"), ensure_ascii=False, default=str
    )


# The string-typed keys (timestamps included, as the server sends them), read in one Arrow call.
_TEXT_KEYS = tuple(key for _, key, build in _COLUMNS if build in (_str_array, _ts_array))
_TEXT_STRUCT = pa.struct([pa.field(k, pa.string()) for k in (*_TEXT_KEYS, "sip_call_id")])


def _fast_columns(records: list[dict[str, Any]]) -> dict[str, pa.Array] | None:
    """The columns of a batch whose text fields are all strings or missing, built by Arrow from
    the dicts in one pass (no Python loop per column); None when any is not: the caller then
    builds column by column, which also finds the records to quarantine."""
    try:
        texts = pa.array(records, type=_TEXT_STRUCT)
        cols: dict[str, pa.Array] = {}
        for name, key, build in _COLUMNS:
            if build is _str_array:
                cols[name] = texts.field(key)
            elif build is _ts_array:
                parsed = texts.field(key).cast(UTC_NS)
                cols[name] = pc.cast(parsed, UTC_US, safe=False)  # truncates nanoseconds
        cols["sip_callid"] = pc.coalesce(texts.field("sip_callid"), texts.field("sip_call_id"))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return cols


def _build(
    records: list[dict[str, Any]], synced_at: datetime
) -> tuple[dict[str, pa.Array], list[str]]:
    """All columns of `calls` for `records`, or _Rejects naming the bad ones."""
    fast = _fast_columns(records) if records else None
    if fast is None:
        cols = {name: _column(name, key, build, records) for name, key, build in _COLUMNS}
    else:
        cols = {
            name: fast[name] if name in fast else _column(name, key, build, records)
            for name, key, build in _COLUMNS
        }
    n = len(records)

    attempted = cols["attempted_at"]
    if attempted.null_count:
        missing = pc.indices_nonzero(pc.is_null(attempted)).to_pylist()
        raise _Rejects({i: "attempted_at: missing" for i in missing})

    call_sid = cols["call_sid"].to_pylist()
    keys: list[str] = call_sid  # filled in below where call_sid is null or empty
    nosid = [i for i, sid in enumerate(call_sid) if not sid]
    if nosid:
        sip = cols["sip_callid"]
        bad = {
            i: "call_sid and sip_callid/sip_call_id: both missing, the call has no identity"
            for i in nosid
            if not sip[i].as_py()
        }
        if bad:
            raise _Rejects(bad)
        secs = attempted.cast(pa.int64())
        direction = cols["direction"]
        for i in nosid:
            keys[i] = surrogate_key(
                sip[i].as_py(), direction[i].as_py(), secs[i].as_py() // 1_000_000
            )

    # The 1970 sentinel (and epoch 0) means "not answered"; an unanswered call has no answer time.
    answered_at = cols["answered_at"]
    sentinel = pc.equal(answered_at.cast(pa.int64()), 0)
    unanswered = pc.invert(cols["answered"])
    drop = pc.fill_null(pc.or_kleene(sentinel, unanswered), False)
    cols["answered_at"] = pc.if_else(drop, pa.scalar(None, UTC_US), answered_at)

    cols["call_key"] = pa.array(keys, pa.string())
    cols["extra"] = pa.array([_extra(r) for r in records], pa.string())
    cols["synced_at"] = pa.array([synced_at] * n, UTC_US) if n else pa.array([], UTC_US)
    return cols, keys


def _winners(records: list[dict[str, Any]], keys: list[str], terminated: pa.Array) -> list[int]:
    """Indices to keep: one per call_key, the latest terminated_at, ties by canonical JSON."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    term = terminated.cast(pa.int64())
    keep = []
    for idx in groups.values():
        if len(idx) == 1:
            keep.append(idx[0])
            continue
        keep.append(
            max(
                idx,
                key=lambda i: (
                    term[i].as_py() is not None,
                    term[i].as_py() or 0,
                    canonical_json(records[i]),
                ),
            )
        )
    return sorted(keep)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"{ts!r} must be timezone-aware")
    return ts.astimezone(UTC)


def quarantine_key(record: dict[str, Any], window_start: datetime, window_end: datetime) -> str:
    """One row per record per window: a hash of the canonical raw JSON and the window bounds."""
    bounds = f"{_utc(window_start).isoformat()}|{_utc(window_end).isoformat()}"
    return _digest(canonical_json(record) + "|" + bounds)


def normalize(
    records: list[dict[str, Any]],
    *,
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
    raw_texts: list[str] | None = None,
) -> Normalized:
    """Records of one window -> `calls` rows (sorted by attempted_at, call_key), raw, rejections.

    Args:
        records: the API's records, either dialect, possibly with duplicates.
        raw_texts: records[i]'s JSON text as received, stored as its payload; None to write
            each record's JSON (the same content, serialized again: the slow path).
        synced_at: stamped on every row (and as quarantined_at).
        scope_sid: the account or service provider synced (kept with quarantined records).
        window_start, window_end: the window synced (keys the quarantine rows).
    """
    synced_at = _utc(synced_at)
    if raw_texts is not None and len(raw_texts) != len(records):
        raise ValueError(f"{len(raw_texts)} raw texts for {len(records)} records")
    good = list(records)
    pos = list(range(len(good)))  # good[i] is records[pos[i]]
    rejected: list[tuple[dict[str, Any], str]] = []
    while True:
        try:
            cols, keys = _build(good, synced_at)
            break
        except _Rejects as r:
            rejected.extend((good[i], reason) for i, reason in sorted(r.reasons.items()))
            good = [rec for i, rec in enumerate(good) if i not in r.reasons]
            pos = [p for i, p in enumerate(pos) if i not in r.reasons]

    calls = pa.Table.from_arrays([cols[n] for n in CALL_COLUMN_NAMES], schema=CALLS_SCHEMA)
    if len(set(keys)) != len(keys):
        keep = _winners(good, keys, cols["terminated_at"])
        calls = calls.take(keep)
        good = [good[i] for i in keep]
        pos = [pos[i] for i in keep]
    # Sorted by time: the load's range scans skip DuckDB row groups by min/max.
    order = pc.sort_indices(calls, [("attempted_at", "ascending"), ("call_key", "ascending")])
    calls = calls.take(order)
    if raw_texts is not None:
        payloads = [raw_texts[pos[i]] for i in order.to_pylist()]
    else:
        payloads = [
            json.dumps(good[i], separators=(",", ":"), ensure_ascii=False, default=str)
            for i in order.to_pylist()
        ]
    raw = pa.Table.from_arrays(
        [
            calls.column("call_key"),
            calls.column("attempted_at"),
            calls.column("account_sid"),
            pa.array(payloads, pa.string()),
            calls.column("synced_at"),
        ],
        schema=RAW_SCHEMA,
    )
    return Normalized(
        calls, raw, _quarantine(rejected, synced_at, scope_sid, window_start, window_end)
    )


def _quarantine(
    rejected: list[tuple[dict[str, Any], str]],
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
) -> pa.Table:
    ws, we = _utc(window_start), _utc(window_end)
    rows: dict[str, dict[str, Any]] = {}
    for record, reason in rejected:
        qkey = quarantine_key(record, ws, we)
        account = record.get("account_sid")
        rows.setdefault(
            qkey,
            {
                "quarantine_key": qkey,
                "record_key": record_identity(record),
                "scope_sid": scope_sid,
                "account_sid": account if type(account) is str else None,
                "window_start": ws,
                "window_end": we,
                "reason": reason,
                "payload": canonical_json(record),
                "quarantined_at": synced_at,
            },
        )
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=QUARANTINE_SCHEMA)
