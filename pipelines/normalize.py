"""The one normalizer: a stream's Records -> rows of its table, their raw payloads, quarantine.

Records come as Arrow columns with each one's key and time as the pager read them
(pipelines/jambonz/streams.py: one shape, however the page was read). The steps, on whole columns:

1. RULES, one per field of the stream: the value must be of the field's kind, else the record is
   quarantined with a reason naming the field and the value (the first rule a record breaks).
2. The time must be present; the record must have a key.
3. The stream's own fix-ups (RecentCalls: the 1970 `answered_at` sentinel, and any answer time
   of an unanswered call, become NULL).
4. Duplicates (same key) keep the latest of the stream's `latest` field, ties by canonical JSON.
5. Rows are sorted by (time, key): the load's range scans skip row groups.
6. Each row's payload: the record as JSON text, rendered from its columns by Arrow kernels.

It never drops a record silently: every record ends as a row (with its payload in `raw`), as a
row of `quarantine`, or as the loser of a duplicate. Pure: no HTTP, no DuckDB, no Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.jambonz.streams import (
    INVALID_PREFIX,
    JSON,
    RECENT_CALLS,
    UTC_NS,
    Records,
    Stream,
    canonical_json,
    decoded,
    digest,
    parse_times,
    whole,
)
from warehouse.tables import QUARANTINE_SCHEMA, RAW_SCHEMAS, SCHEMAS, UTC_US

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


def _integer(arrow_type: pa.DataType) -> Callable[[Values], pa.Array]:
    """A builder of a column of whole numbers (`752` and `752.0` alike) of `arrow_type`."""

    def build(values: Values) -> pa.Array:
        if isinstance(values, _ARROW) and pa.types.is_floating(values.type):
            if pc.all(pc.equal(pc.trunc(values), values)).as_py() is False:
                raise ValueError("not whole")
            return values.cast(arrow_type)  # out of range raises
        if isinstance(values, _ARROW) and pa.types.is_integer(values.type):
            return values.cast(arrow_type)  # out of range raises
        if isinstance(values, _ARROW):
            values = values.to_pylist()
        values = [whole(v) for v in values]
        if not set(map(type, values)) <= {int, _NONE}:
            raise ValueError("not an integer")
        return pa.array(values, arrow_type)  # out of range raises

    return build


def _double(values: Values) -> pa.Array:
    if isinstance(values, _ARROW) and (
        pa.types.is_floating(values.type) or pa.types.is_integer(values.type)
    ):
        return values.cast(pa.float64())
    if isinstance(values, _ARROW):
        values = values.to_pylist()
    if not set(map(type, values)) <= {int, float, _NONE}:
        raise ValueError("not a number")
    return pa.array(values, pa.float64())


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
INT32 = Kind(_integer(pa.int32()), "a 32-bit integer")
INT64 = Kind(_integer(pa.int64()), "a 64-bit integer")
DOUBLE = Kind(_double, "a number")
TIME = Kind(_time, "an RFC 3339 timestamp or epoch seconds")


KINDS = {
    "text": TEXT,
    "flag": FLAG,
    "int32": INT32,
    "int64": INT64,
    "double": DOUBLE,
    "time": TIME,
}


@dataclass(frozen=True)
class Rule:
    """A column read from the API: its key(s) (the server's first, then the docs')."""

    column: str
    kind: Kind
    keys: tuple[str, ...]


def rules(stream: Stream) -> tuple[Rule, ...]:
    """One rule per field of the stream."""
    return tuple(Rule(f.column, KINDS[f.kind], (f.key, *f.aliases)) for f in stream.fields)


@dataclass
class Normalized:
    """Records normalized: what the warehouse loads (warehouse.load.WindowLoad.add)."""

    calls: pa.Table  # the rows: warehouse.tables.SCHEMAS[table], synced_at filled
    raw: pa.Table  # warehouse.tables.RAW_SCHEMAS[table]: the JSON text of each row's record
    quarantine: pa.Table  # warehouse.tables.QUARANTINE_SCHEMA: rejected records and why


def _values(records: Records, rule: Rule) -> Values:
    """The rule's values: its column as the page came (no copy), or the values of the first of
    its keys each record has (sip_callid, else the docs' sip_call_id); JSON columns decoded."""
    table = records.table
    columns = [table.column(k) for k in rule.keys if k in table.column_names]
    if len(columns) == 1 and columns[0].type != JSON:
        return columns[0]
    if not columns:
        return [None] * len(records)
    lists = [decoded(c) if c.type == JSON else c.to_pylist() for c in columns]
    return [next((v for v in row if v is not None), None) for row in zip(*lists, strict=True)]


def _extra(records: Records, known: frozenset[str]) -> pa.Array:
    """The unknown keys of each record, sorted, as compact JSON (NULL when none)."""
    table = records.table
    names = sorted(k for k in table.column_names if k not in known)
    if not names:
        return pa.nulls(len(records), pa.string())
    present = pc.is_valid(table.column(names[0]))
    for k in names[1:]:
        present = pc.or_(present, pc.is_valid(table.column(k)))
    rows = pc.indices_nonzero(present)
    # the rows with an unknown key, their unknown columns only, as Python values
    values = {k: _python(table.column(k).take(rows)) for k in names}
    out: list[str | None] = [None] * len(records)
    for j, i in enumerate(rows.to_pylist()):
        out[i] = _json({k: values[k][j] for k in names if values[k][j] is not _ABSENT})
    return pa.array(out, pa.string())


_ABSENT = object()


def _python(column: pa.ChunkedArray) -> list[Any]:
    """An unknown key's values as json.loads gave them; _ABSENT where the record lacks it."""
    if column.type == JSON:
        return [_ABSENT if t is None else json.loads(t) for t in column.to_pylist()]
    return [_ABSENT if v is None else v for v in column.to_pylist()]


def _payloads(
    table: pa.Table, known: frozenset[str], checked: dict[str, pa.Array], escapes: bool
) -> pa.Array:
    """Each record as compact JSON text, its keys in column order, absent keys left out (known:
    the keys every record carries, whose null is a JSON null); the
    columns in `checked` (integer fields, as the integers they were checked to be) instead of
    theirs. Arrow's string kernels, no Python per record."""
    pieces = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        key = _json(name) + ":"
        column = checked.get(name, column)
        if pa.types.is_string(column.type):  # quoted (and escaped) with the key in one join
            text = _escaped(column) if escapes else column
            text = pc.binary_join_element_wise(key + '"', text, '"', "")
        else:
            text = pc.binary_join_element_wise(key, _json_texts(column), "")
        if name in known and column.type != JSON:  # a field's null is a JSON null, not absent
            text = pc.fill_null(text, key + "null")
        pieces.append(text)
    if not pieces:
        return pa.array(["{}"] * table.num_rows, pa.string())
    inner = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
    return pc.binary_join_element_wise("{", inner, "}", "")


def _json_texts(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each value of a column that is not text as its JSON text; null where null."""
    if column.type == JSON:
        return pa.chunked_array([c.storage for c in column.chunks], pa.string())
    return column.cast(pa.string())  # booleans, numbers: Arrow writes JSON's forms


def _escaped(column: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Texts with `\\` and `"` escaped, to be put between quotes; a column holding a control
    character is escaped value by value (json.dumps, without its quotes)."""
    if pc.any(pc.match_substring_regex(column, r"[\x00-\x1f]")).as_py():
        texts = [None if v is None else _json(v)[1:-1] for v in column.to_pylist()]
        return pa.array(texts, pa.string())
    return pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


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


def _fix_calls(cols: dict[str, pa.Array]) -> None:
    """RecentCalls: the 1970 sentinel (and epoch 0) means "not answered"; an unanswered call has
    no answer time."""
    answered_at = cols["answered_at"]
    sentinel = pc.equal(answered_at.cast(pa.int64()), 0)
    drop = pc.fill_null(pc.or_kleene(sentinel, pc.invert(cols["answered"])), False)
    cols["answered_at"] = pc.if_else(drop, pa.scalar(None, UTC_US), answered_at)


def _fix_alerts(cols: dict[str, pa.Array]) -> None:
    """Alerts: the writer writes a missing account or service provider as the text "undefined"
    (every service-provider alert has it): it means none."""
    for column in ("account_sid", "service_provider_sid"):
        values = cols[column]
        undefined = pc.fill_null(pc.equal(values, "undefined"), False)
        cols[column] = pc.if_else(undefined, pa.scalar(None, pa.string()), values)


# a stream's fix-ups of its built columns, by table; and the field whose latest value wins
# among copies of one record
FIXES: dict[str, Callable[[dict[str, pa.Array]], None]] = {
    "calls": _fix_calls,
    "alerts": _fix_alerts,
}
LATEST: dict[str, str] = {"calls": "terminated_at"}


def normalize(
    records: Records,
    *,
    synced_at: datetime,
    scope_sid: str,
    window_start: datetime,
    window_end: datetime,
    stream: Stream = RECENT_CALLS,
) -> Normalized:
    """A stream's records (possibly with duplicates) -> Normalized.

    Args:
        records: the records, their keys and times as the pager read them.
        synced_at: stamped on every row (and as quarantined_at).
        scope_sid: the account or service provider synced (kept with quarantined records).
        window_start, window_end: the window synced (keys the quarantine rows).
        stream: the spec the records are of.
    """
    synced_at = _utc(synced_at)
    n = len(records)
    known = stream.known_keys
    required = stream.required_keys
    reasons: dict[int, str] = {}
    cols: dict[str, pa.Array] = {}
    instants = pa.array(records.instants, pa.int64())
    unread: list[int] = []  # records whose time the pager could not read
    if instants.null_count:
        unread = pc.indices_nonzero(pc.is_null(instants)).to_pylist()
    checked: dict[str, pa.Array] = {}  # the integer fields, for the payloads
    for rule in rules(stream):
        values = _values(records, rule)
        if rule.keys[0] == stream.time_key:  # read once, by the pager: only its reason is sought
            vals = values.to_pylist() if unread and isinstance(values, _ARROW) else values
            for i in unread:
                if vals[i] is not None:  # a missing one is named after every other rule
                    text = _value_text(vals[i])
                    reasons.setdefault(i, f"{rule.keys[0]}: {text} is not {TIME.expected}")
            cols[rule.column] = pc.cast(instants.cast(UTC_NS), UTC_US, safe=False)
            continue
        cols[rule.column] = _column(rule, values, reasons)
        # the integer fields, as the integers they were checked to be (an optional one's JSON
        # column keeps its own text: its explicit nulls are not absent keys)
        whole_ints = rule.keys[0] in records.nulls(required) or isinstance(values, _ARROW)
        if rule.kind in (INT32, INT64) and len(rule.keys) == 1 and whole_ints:
            checked[rule.keys[0]] = cols[rule.column]
    for i in unread:
        reasons.setdefault(i, f"{stream.time_key}: missing")
    key = cols[stream.key_column] = pa.array(records.keys, pa.string())
    for i in pc.indices_nonzero(pc.starts_with(key, INVALID_PREFIX)).to_pylist():
        reasons.setdefault(i, stream.no_key)
    if stream.table in FIXES:
        FIXES[stream.table](cols)
    cols["extra"] = _extra(records, known)
    cols["synced_at"] = pa.repeat(pa.scalar(synced_at, UTC_US), n)

    schema = SCHEMAS[stream.table]
    rows_out = pa.Table.from_arrays([cols[c] for c in schema.names], schema=schema)
    rows = None  # the input row of each output row, when some are left out
    repeated = pc.count_distinct(key).as_py() != n
    if reasons or repeated:
        keep = [i for i in range(n) if i not in reasons]
        if repeated:
            latest = cols.get(LATEST.get(stream.table, ""))
            keep = _winners(records, keep, latest, required)
        rows = pa.array(keep, pa.int64())
        rows_out = rows_out.take(rows)
    time_column = next(f.column for f in stream.fields if f.key == stream.time_key)
    order = pc.sort_indices(
        rows_out, [(time_column, "ascending"), (stream.key_column, "ascending")]
    )
    rows_out = rows_out.take(order)
    rows = order if rows is None else rows.take(order)
    payloads = _payloads(
        records.table.take(rows),
        records.nulls(required),
        {k: c.take(rows) for k, c in checked.items()},
        records.escapes,
    )
    raw = pa.Table.from_arrays(
        [
            rows_out.column(stream.key_column),
            rows_out.column(time_column),
            rows_out.column("account_sid"),
            payloads,
            rows_out.column("synced_at"),
        ],
        schema=RAW_SCHEMAS[stream.table],
    )
    rejected = [
        (records.record(i, required), records.keys[i], reason)
        for i, reason in sorted(reasons.items())
    ]
    return Normalized(
        rows_out, raw, _quarantine(rejected, synced_at, scope_sid, window_start, window_end)
    )


def _winners(
    records: Records, keep: list[int], latest: pa.Array | None, known: frozenset[str]
) -> list[int]:
    """Of `keep`, one index per key: the latest `latest`, ties by canonical JSON."""
    groups: dict[str, list[int]] = {}
    for i in keep:
        groups.setdefault(records.keys[i], []).append(i)
    ns = latest.cast(pa.int64()) if latest is not None else None

    def rank(i: int) -> tuple[bool, int, str]:
        t = ns[i].as_py() if ns is not None else None
        return t is not None, t or 0, canonical_json(records.record(i, known))

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
