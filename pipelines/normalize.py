"""The one normalizer: RecentCalls records -> rows of `calls`, their raw payloads, quarantine.

Records come as Arrow columns (columnar.read_page: the server's dialect, typed as sent) or as
dicts (an odd page, or the docs' dialect), with each one's identity and attempted_at as the window
read them. Both go through the same steps here, on whole columns:

1. RULES, one per API column: the value must be of the rule's Kind, else the record is
   quarantined with a reason naming the field and the value (the first rule a record breaks).
2. attempted_at must be present; the record must have an identity.
3. The 1970 `answered_at` sentinel (and any answer time of an unanswered call) becomes NULL.
4. Duplicates (same call_key) keep the latest terminated_at, ties broken by canonical JSON.
5. Rows are sorted by (attempted_at, call_key): the load's range scans skip row groups.

It never drops a record silently: every record ends as a row of `calls` (with its payload in
`raw`), as a row of `quarantine`, or as the loser of a duplicate. Knows no HTTP, DuckDB or Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.jambonz.records import (
    INVALID_PREFIX,
    KNOWN_KEYS,
    SERVER_KEYS,
    UTC_NS,
    canonical_json,
    digest,
    identities,
    parse_times,
    whole,
)
from warehouse.payloads import record_json
from warehouse.tables import (
    CALL_COLUMN_NAMES,
    CALLS_SCHEMA,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    UTC_US,
)

_NONE = type(None)
Values: TypeAlias = pa.Array | pa.ChunkedArray | list[Any]
_ARROW = (pa.Array, pa.ChunkedArray)


def _plain(arrow_type: pa.DataType, py_type: type) -> Callable[[Values], pa.Array]:
    """A builder of a column of one JSON type (text, boolean): any other value is refused."""

    def build(values: Values) -> pa.Array:
        if isinstance(values, _ARROW):
            if values.type == arrow_type:
                return values
            if values.null_count != len(values):
                raise ValueError(f"not {arrow_type}")
            return values.cast(arrow_type)
        if not set(map(type, values)) <= {py_type, _NONE}:
            raise ValueError(f"not {arrow_type}")
        return pa.array(values, arrow_type)

    return build


def _int32(values: Values) -> pa.Array:
    if isinstance(values, _ARROW) and pa.types.is_floating(values.type):
        if pc.all(pc.equal(pc.trunc(values), values)).as_py() is False:
            raise ValueError("not whole")
        return values.cast(pa.int32())  # out of range raises
    if isinstance(values, _ARROW):
        values = values.to_pylist()
    values = [whole(v) for v in values]
    if not set(map(type, values)) <= {int, _NONE}:
        raise ValueError("not an integer")
    return pa.array(values, pa.int32())  # out of range raises


def _time(values: Values) -> pa.Array:
    ns = parse_times(values)  # null where missing or unreadable: more nulls, some unreadable
    if ns.null_count != (values.null_count if isinstance(values, _ARROW) else values.count(None)):
        raise ValueError("not a time")
    return pc.cast(ns, UTC_US, safe=False)  # truncates nanoseconds


@dataclass(frozen=True)
class Kind:
    """What a column holds: how a whole column is built, and what a bad value is not."""

    build: Callable[[Values], pa.Array]  # raises ValueError/ArrowException on any bad value
    expected: str  # "<key>: <value> is not <expected>"


TEXT = Kind(_plain(pa.string(), str), "a string")
FLAG = Kind(_plain(pa.bool_(), bool), "a boolean")
INT32 = Kind(_int32, "a 32-bit integer")
TIME = Kind(_time, "an RFC 3339 timestamp or epoch seconds")


@dataclass(frozen=True)
class Rule:
    """A `calls` column read from the API: its key(s) (the server's first, then the docs')."""

    column: str
    kind: Kind
    keys: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule("call_sid", TEXT, ("call_sid",)),
    Rule("account_sid", TEXT, ("account_sid",)),
    Rule("service_provider_sid", TEXT, ("service_provider_sid",)),
    Rule("application_sid", TEXT, ("application_sid",)),
    Rule("direction", TEXT, ("direction",)),
    Rule("from_number", TEXT, ("from",)),
    Rule("to_number", TEXT, ("to",)),
    Rule("answered", FLAG, ("answered",)),
    Rule("sip_status", INT32, ("sip_status",)),
    Rule("duration", INT32, ("duration",)),
    Rule("attempted_at", TIME, ("attempted_at",)),
    Rule("answered_at", TIME, ("answered_at",)),
    Rule("terminated_at", TIME, ("terminated_at",)),
    Rule("termination_reason", TEXT, ("termination_reason",)),
    Rule("host", TEXT, ("host",)),
    Rule("remote_host", TEXT, ("remote_host",)),
    Rule("trunk", TEXT, ("trunk",)),
    Rule("sip_callid", TEXT, ("sip_callid", "sip_call_id")),
    Rule("sip_parent_callid", TEXT, ("sip_parent_callid",)),
    Rule("trace_id", TEXT, ("trace_id",)),
    Rule("recording_url", TEXT, ("recording_url",)),
)
# every API key is some rule's, every rule's column is a `calls` column
assert {k for r in RULES for k in r.keys} == KNOWN_KEYS
assert {r.column for r in RULES} <= set(CALL_COLUMN_NAMES)


@dataclass
class Normalized:
    """Records normalized: what the warehouse loads (warehouse.load.WindowLoad.add)."""

    calls: pa.Table  # warehouse.tables.CALLS_SCHEMA, synced_at filled with `synced_at`
    raw: pa.Table  # warehouse.tables.RAW_SCHEMA: the JSON text of each record in `calls`
    quarantine: pa.Table  # warehouse.tables.QUARANTINE_SCHEMA: rejected records and why


@dataclass
class _Records:
    """Records of either reading (a table or dicts), as the steps above need them."""

    keys: list[str]
    instants: list[int | None]
    table: pa.Table | None = None
    dicts: list[dict[str, Any]] | None = None

    @property
    def n(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.dicts or [])

    def values(self, rule: Rule) -> Values:
        if self.table is not None:
            return self.table.column(rule.keys[0])  # chunked as the pages came: no copy
        assert self.dicts is not None
        if len(rule.keys) == 1:
            key = rule.keys[0]
            return [r.get(key) for r in self.dicts]
        # the first of the rule's keys the record has (sip_callid, else the docs' sip_call_id)
        return [next((r[k] for k in rule.keys if r.get(k) is not None), None) for r in self.dicts]

    def record(self, i: int) -> dict[str, Any]:
        """Record i as the API sent it (unknown keys that were absent left out)."""
        if self.dicts is not None:
            return self.dicts[i]
        assert self.table is not None
        row: dict[str, Any] = self.table.slice(i, 1).to_pylist()[0]
        return {k: v for k, v in row.items() if k in KNOWN_KEYS or v is not None}

    def extra(self) -> pa.Array:
        """The unknown keys of each record, sorted, as compact JSON (NULL when none)."""
        if self.dicts is not None:
            return pa.array([_extra_json(r) for r in self.dicts], pa.string())
        assert self.table is not None
        names = sorted(k for k in self.table.column_names if k not in KNOWN_KEYS)
        if not names:
            return pa.nulls(self.n, pa.string())
        present = pc.is_valid(self.table.column(names[0]))
        for k in names[1:]:
            present = pc.or_(present, pc.is_valid(self.table.column(k)))
        out: list[str | None] = [None] * self.n
        for i in pc.indices_nonzero(present).to_pylist():
            values = {k: v for k in names if (v := self.table.column(k)[i].as_py()) is not None}
            out[i] = _extra_json(values)
        return pa.array(out, pa.string())

    def payloads(self, rows: pa.Array, cols: dict[str, pa.Array]) -> pa.Array:
        """calls_raw.payload of `rows`: each record as compact JSON (dicts by json.dumps, Arrow
        rows by the warehouse, their numbers as the integers they were checked to be)."""
        if self.dicts is not None:
            return pa.array([_json(self.dicts[i]) for i in rows.to_pylist()], pa.string())
        assert self.table is not None
        record = self.table.select(list(SERVER_KEYS))
        for key in ("sip_status", "duration"):
            record = record.set_column(record.schema.get_field_index(key), key, cols[key])
        # rendered in the page's order (DuckDB scans the pages' chunks in parallel), then taken
        return record_json(record, cols["extra"]).take(rows)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _extra_json(mapping: dict[str, Any]) -> str | None:
    """The keys of `mapping` no column holds, sorted, as compact JSON; None when none."""
    if mapping.keys() <= KNOWN_KEYS:  # the common case, without building a dict
        return None
    return _json({k: mapping[k] for k in sorted(mapping.keys() - KNOWN_KEYS)})


def _value_text(v: Any) -> str:
    text = repr(whole(v))
    return text if len(text) <= 80 else text[:77] + "..."


def _column(rule: Rule, values: Values, reasons: dict[int, str]) -> pa.Array:
    """The rule's column; bad values are named in `reasons` (first reason per record kept) and
    left NULL in the column, whose rows the caller drops."""
    try:
        return rule.kind.build(values)
    except (ValueError, TypeError, OverflowError, pa.ArrowException):
        pass
    vals = values.to_pylist() if isinstance(values, _ARROW) else values
    good: list[Any] = []
    for i, v in enumerate(vals):
        try:
            rule.kind.build([v])
        except (ValueError, TypeError, OverflowError, pa.ArrowException):
            reasons.setdefault(i, f"{rule.keys[0]}: {_value_text(v)} is not {rule.kind.expected}")
            v = None
        good.append(v)
    return rule.kind.build(good)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"{ts!r} must be timezone-aware")
    return ts.astimezone(UTC)


def normalize(
    records: list[dict[str, Any]],
    *,
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
    keys: Sequence[str] | None = None,
    instants: Sequence[int | None] | None = None,
) -> Normalized:
    """Records read as dicts (either dialect, possibly with duplicates) -> Normalized.

    Args:
        keys, instants: each record's identity and attempted_at (ns) as the window read them;
            read here when not given.
        synced_at: stamped on every row (and as quarantined_at).
        scope_sid: the account or service provider synced (kept with quarantined records).
        window_start, window_end: the window synced (keys the quarantine rows).
    """
    if instants is None:
        read = parse_times([r.get("attempted_at") for r in records]).cast(pa.int64())
        instants = read.to_pylist()
    if keys is None:
        keys = identities(records, list(instants))
    part = _Records(list(keys), list(instants), dicts=records)
    return _normalize(part, synced_at, scope_sid, window_start, window_end)


def normalize_table(
    table: pa.Table,
    *,
    keys: Sequence[str],
    instants: Sequence[int | None],
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
) -> Normalized:
    """Records read as Arrow (columnar.read_page; several pages concatenated) -> Normalized."""
    part = _Records(list(keys), list(instants), table=table)
    return _normalize(part, synced_at, scope_sid, window_start, window_end)


def _normalize(
    part: _Records,
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
) -> Normalized:
    synced_at = _utc(synced_at)
    n = part.n
    reasons: dict[int, str] = {}
    cols: dict[str, pa.Array] = {}
    attempted_ns = pa.array(part.instants, pa.int64())
    unread: list[int] = []  # records whose attempted_at the window could not read
    if attempted_ns.null_count:
        unread = pc.indices_nonzero(pc.is_null(attempted_ns)).to_pylist()
    for rule in RULES:
        values = part.values(rule)
        if rule.column == "attempted_at":  # read once, by the window: only its reason is sought
            vals = values.to_pylist() if unread and isinstance(values, _ARROW) else values
            for i in unread:
                if vals[i] is not None:  # a missing one is named after every other rule
                    text = _value_text(vals[i])
                    reasons.setdefault(i, f"attempted_at: {text} is not {TIME.expected}")
            cols[rule.column] = pc.cast(attempted_ns.cast(UTC_NS), UTC_US, safe=False)
            continue
        cols[rule.column] = _column(rule, values, reasons)
    for i in unread:
        reasons.setdefault(i, "attempted_at: missing")
    call_key = cols["call_key"] = pa.array(part.keys, pa.string())
    for i in pc.indices_nonzero(pc.starts_with(call_key, INVALID_PREFIX)).to_pylist():
        reasons.setdefault(
            i, "call_sid and sip_callid/sip_call_id: both missing, the call has no identity"
        )

    # The 1970 sentinel (and epoch 0) means "not answered"; an unanswered call has no answer time.
    answered_at = cols["answered_at"]
    sentinel = pc.equal(answered_at.cast(pa.int64()), 0)
    drop = pc.fill_null(pc.or_kleene(sentinel, pc.invert(cols["answered"])), False)
    cols["answered_at"] = pc.if_else(drop, pa.scalar(None, UTC_US), answered_at)
    cols["extra"] = part.extra()
    cols["synced_at"] = pa.repeat(pa.scalar(synced_at, UTC_US), n)

    calls = pa.Table.from_arrays([cols[c] for c in CALL_COLUMN_NAMES], schema=CALLS_SCHEMA)
    rows = None  # the input row of each output row, when some are left out
    repeated = pc.count_distinct(call_key).as_py() != n
    if reasons or repeated:
        keep = [i for i in range(n) if i not in reasons]
        if repeated:
            keep = _winners(part, keep, cols["terminated_at"])
        rows = pa.array(keep, pa.int64())
        calls = calls.take(rows)
    order = pc.sort_indices(calls, [("attempted_at", "ascending"), ("call_key", "ascending")])
    calls = calls.take(order)
    rows = order if rows is None else rows.take(order)
    raw = pa.Table.from_arrays(
        [
            calls.column("call_key"),
            calls.column("attempted_at"),
            calls.column("account_sid"),
            part.payloads(rows, cols),
            calls.column("synced_at"),
        ],
        schema=RAW_SCHEMA,
    )
    rejected = [(part.record(i), part.keys[i], reason) for i, reason in sorted(reasons.items())]
    return Normalized(
        calls, raw, _quarantine(rejected, synced_at, scope_sid, window_start, window_end)
    )


def _winners(part: _Records, keep: list[int], terminated: pa.Array) -> list[int]:
    """Of `keep`, one index per call_key: the latest terminated_at, ties by canonical JSON."""
    groups: dict[str, list[int]] = {}
    for i in keep:
        groups.setdefault(part.keys[i], []).append(i)
    term = terminated.cast(pa.int64())

    def rank(i: int) -> tuple[bool, int, str]:
        ns = term[i].as_py()
        return ns is not None, ns or 0, canonical_json(part.record(i))

    return sorted(idx[0] if len(idx) == 1 else max(idx, key=rank) for idx in groups.values())


def _quarantine(
    rejected: list[tuple[dict[str, Any], str, str]],
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
) -> pa.Table:
    ws, we = _utc(window_start), _utc(window_end)
    bounds = f"|{ws.isoformat()}|{we.isoformat()}"
    rows: dict[str, dict[str, Any]] = {}
    for record, key, reason in rejected:
        payload = canonical_json(record)
        # one row per record per window: a hash of the canonical raw JSON and the window bounds
        qkey = digest(payload + bounds)
        account = record.get("account_sid")
        rows.setdefault(
            qkey,
            {
                "quarantine_key": qkey,
                "record_key": key,
                "scope_sid": scope_sid,
                "account_sid": account if type(account) is str else None,
                "window_start": ws,
                "window_end": we,
                "reason": reason,
                "payload": payload,
                "quarantined_at": synced_at,
            },
        )
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=QUARANTINE_SCHEMA)
