"""The fast path of a sync: a RecentCalls page's bytes -> checked Arrow columns, without Python
objects per record.

json.loads builds a dict per record and records.normalize walks them again: ~20 us a call, all of
it holding the GIL. Here pyarrow's JSON reader parses the page in C++ with the GIL released (so
the other fetch thread, the normalizer and the writer run beside it) into typed columns, and
every rule records.normalize applies is checked on whole columns. A page is taken by this path
only when normalize would take each of its records as it is: server dialect (RFC 3339 `Z`
strings), a call_sid or else a sip_callid on every record (the surrogate key is computed here),
the right JSON type in every field, whole numbers in int32 range, no unknown key other than a
string, number or boolean. Anything else (a wrong type, a call with no identity, the docs'
dialect, a null, whole-float or nested unknown key, a key missing or repeated) makes `read_page`
return None, and the caller parses the page with json.loads and normalizes it record by record,
which quarantines with reasons. Both paths give the same rows and the same payloads (as JSON
values; tests/unit/test_columnar.py holds them to it, with a property test).

Payloads are rebuilt, not sliced from the body: the record's fields in the server's order, its
timestamps as the original text, its unknown keys after them. A page is only taken when its count
of `":` equals the count of keys the table explains (every server key on every record, every
unknown key where it is not null): a record missing a key is not rebuilt with a null for it.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipelines.jambonz.paging import NS_PER_S, STRICT_UTC, Page, parse_envelope
from pipelines.jambonz.records import (
    INT32_MAX,
    INT32_MIN,
    KNOWN_KEYS,
    SERVER_KEYS,
    UTC_NS,
    Normalized,
    surrogate_key,
)
from warehouse.sql_files import sql
from warehouse.tables import (
    CALL_COLUMN_NAMES,
    CALLS_SCHEMA,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    UTC_US,
)

# Numbers are read as float64: the server sends `752` and `752.0` alike; whole and in range is
# checked below (a bool, a string or an object in a number field fails the read).
_TYPES = {"answered": pa.bool_(), "sip_status": pa.float64(), "duration": pa.float64()}
_RECORD = pa.struct([pa.field(k, _TYPES.get(k, pa.string())) for k in SERVER_KEYS])
_ENVELOPE_KEYS = ("total", "page", "page_size", "batch", "data")
# the server sends total as a number, page and page_size as strings ("500"; captures 13, 60)
_ENVELOPE = pa.schema(
    [pa.field("total", pa.int64())]
    + [pa.field(k, pa.string()) for k in _ENVELOPE_KEYS[1:-1]]
    + [pa.field("data", pa.list_(_RECORD))]
)
_PARSE = pj.ParseOptions(explicit_schema=_ENVELOPE, unexpected_field_behavior="infer")
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 22)
# unknown keys taken on this path: their JSON value and Arrow's reading of it are the same (a
# float is, unless whole: see read_page)
_EXTRA_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
_TIME_KEYS = ("attempted_at", "answered_at", "terminated_at")
_COLUMN_KEY = {"from_number": "from", "to_number": "to"}  # calls column -> API key, if different
RECORDS = pa.schema(
    [
        pa.field("call_key", pa.string()),
        *_RECORD,
        pa.field("extra", pa.string()),
        # the three times, parsed once by read_page's checks (the text stays for the payload)
        *(pa.field(f"{key}_us", UTC_US) for key in _TIME_KEYS),
    ]
)


@dataclass
class ColumnarPage:
    """One envelope read by read_page; `records` holds only records normalize takes unchanged."""

    total: int
    page: int | None
    page_size: int | None
    # call_key (the keys below), SERVER_KEYS as read (timestamps as text), extra (normalize's:
    # the unknown keys as JSON, or null): one schema for every page, RECORDS
    records: pa.Table
    keys: list[str]  # call_key (= call_sid) of each record
    instants: list[int]  # attempted_at of each record, ns since the epoch


def parse_page(body: bytes) -> Page:
    """A 200 body as paging.Page: its records as columns when read_page takes them (Page.columns),
    else as dicts (paging.parse_envelope, which also names a bad body)."""
    cols = read_page(body)
    if cols is None:
        return parse_envelope(body)
    return Page(cols.total, cols.page, cols.page_size, data=[], columns=cols)


def read_page(body: bytes) -> ColumnarPage | None:
    """The page, read in C++ and checked; None when records.normalize must see it instead."""
    try:
        doc = pj.read_json(io.BytesIO(body), read_options=_READ, parse_options=_PARSE)
    except (pa.ArrowException, ValueError, TypeError):
        return None
    if doc.num_rows != 1 or doc.schema.names != list(_ENVELOPE_KEYS):
        return None  # several documents, or an unknown envelope key
    env = {k: doc.column(k)[0].as_py() for k in _ENVELOPE_KEYS[:-1]}
    data = doc.column("data").combine_chunks()
    total, page, size, batch = env.values()
    if total is None or total < 0 or data.null_count:
        return None  # parse_envelope names what is wrong
    if size is not None and batch is not None:
        return None
    size = size if size is not None else batch
    if not all(v is None or (v.isascii() and v.isdigit()) for v in (page, size)):
        return None
    records = pa.Table.from_struct_array(data.values)
    n = records.num_rows
    extras = records.column_names[len(SERVER_KEYS) :]
    if any(records.schema.field(k).type not in _EXTRA_TYPES for k in extras):
        return None
    for k in extras:
        col = records.column(k)
        if col.type == pa.float64() and pc.any(pc.equal(pc.trunc(col), col)).as_py():
            return None  # `1` and `1.0` both read as 1.0: json.loads tells them apart
    if any(k in KNOWN_KEYS or k == "call_key" for k in extras):
        return None  # the docs dialect's sip_call_id: normalize reads it
    keys_explained = sum(v is not None for v in env.values()) + 1 + n * len(SERVER_KEYS)
    keys_explained += sum(n - records.column(k).null_count for k in extras)
    if body.count(b'":') != keys_explained:
        return None  # a key missing, repeated, null where unknown, or `":` inside a string
    try:
        times = _checked(records)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    if times is None:
        return None
    instants: list[int] = times[0].cast(pa.int64()).to_pylist()
    keys = _call_keys(records, instants)
    if keys is None:
        return None
    columns = [
        pa.array(keys, pa.string()),
        *records.columns[: len(SERVER_KEYS)],
        _extra(records),
        *(pc.cast(t, UTC_US, safe=False) for t in times),  # truncated to microseconds
    ]
    return ColumnarPage(
        total=int(total),
        page=int(page) if page is not None else None,
        page_size=int(size) if size is not None else None,
        records=pa.Table.from_arrays(columns, schema=RECORDS),
        keys=keys,
        instants=instants,
    )


def _checked(records: pa.Table) -> list[pa.Array] | None:
    """The _TIME_KEYS parsed (ns) when every record passes normalize's rules as it is, else None.

    A time normalize would quarantine raises (ArrowInvalid) instead.
    """
    if not records.num_rows:
        return [pa.array([], UTC_NS)] * len(_TIME_KEYS)
    attempted = records.column("attempted_at")
    if attempted.null_count or not pc.all(pc.match_substring_regex(attempted, STRICT_UTC)).as_py():
        return None
    for key in ("sip_status", "duration"):
        col = records.column(key)
        if col.null_count == len(col):
            continue
        if not pc.all(pc.equal(pc.trunc(col), col)).as_py():
            return None
        span = pc.min_max(col)
        if span["min"].as_py() < INT32_MIN or span["max"].as_py() > INT32_MAX:
            return None
    return [records.column(key).cast(UTC_NS) for key in _TIME_KEYS]


def _call_keys(records: pa.Table, instants: list[int]) -> list[str] | None:
    """records.record_identity of each record: call_sid, or the surrogate key of a call without
    one (inbound calls that failed early); None when one has no sip_callid either."""
    keys: list[str | None] = records.column("call_sid").to_pylist()
    nosid = [i for i, k in enumerate(keys) if not k]
    if nosid:
        sip = records.column("sip_callid")
        direction = records.column("direction")
        for i in nosid:
            sip_id = sip[i].as_py()
            if not sip_id:
                return None  # quarantined by normalize, with its reason
            keys[i] = surrogate_key(sip_id, direction[i].as_py(), instants[i] // NS_PER_S)
    return keys  # type: ignore[return-value]  # every None was replaced


def normalize_columns(records: pa.Table, *, synced_at: datetime) -> Normalized:
    """Records read by read_page -> `calls` rows (sorted like normalize's) and raw payloads.

    The records must be distinct calls (the client's stream never repeats one); nothing is
    quarantined here, read_page already sent every doubtful page to records.normalize.
    """
    synced_at = synced_at.astimezone(UTC)
    n = records.num_rows
    cols: dict[str, Any] = {}
    for name in CALL_COLUMN_NAMES:
        key = _COLUMN_KEY.get(name, name)
        if key in _TIME_KEYS:
            cols[name] = records.column(f"{key}_us")
        elif key in ("sip_status", "duration"):
            cols[name] = records.column(key).cast(pa.int32())
        elif key in SERVER_KEYS:
            cols[name] = records.column(key)
    cols["call_key"] = records.column("call_key")
    # The 1970 sentinel (and epoch 0) means "not answered"; an unanswered call has no answer time.
    answered_at = cols["answered_at"]
    sentinel = pc.equal(answered_at.cast(pa.int64()), 0)
    drop = pc.fill_null(pc.or_kleene(sentinel, pc.invert(cols["answered"])), False)
    cols["answered_at"] = pc.if_else(drop, pa.scalar(None, UTC_US), answered_at)
    cols["extra"] = records.column("extra")
    cols["synced_at"] = pa.array([synced_at] * n, UTC_US) if n else pa.array([], UTC_US)
    calls = pa.Table.from_arrays([cols[k] for k in CALL_COLUMN_NAMES], schema=CALLS_SCHEMA)
    order = pc.sort_indices(calls, [("attempted_at", "ascending"), ("call_key", "ascending")])
    calls = calls.take(order)
    payloads = _payloads(records, cols["sip_status"], cols["duration"])
    raw = pa.Table.from_arrays(
        [
            calls.column("call_key"),
            calls.column("attempted_at"),
            calls.column("account_sid"),
            payloads.take(order),
            calls.column("synced_at"),
        ],
        schema=RAW_SCHEMA,
    )
    return Normalized(calls, raw, QUARANTINE_SCHEMA.empty_table())


def _extra(records: pa.Table) -> pa.Array:
    """records.normalize's `extra`: the unknown keys of each record, sorted, as compact JSON."""
    names = sorted(records.column_names[len(SERVER_KEYS) :])
    out: list[str | None] = [None] * records.num_rows
    if not names:
        return pa.nulls(records.num_rows, pa.string())
    present = pc.is_valid(records.column(names[0]))
    for k in names[1:]:
        present = pc.or_(present, pc.is_valid(records.column(k)))
    for i in pc.indices_nonzero(present).to_pylist():
        values = {k: records.column(k)[i].as_py() for k in names}
        out[i] = json.dumps(
            {k: v for k, v in values.items() if v is not None},
            separators=(",", ":"),
            ensure_ascii=False,
        )
    return pa.array(out, pa.string())


_DB: duckdb.DuckDBPyConnection | None = None  # in memory; each call takes its own cursor
_DB_LOCK = threading.Lock()


def _payloads(records: pa.Table, sip_status: pa.Array, duration: pa.Array) -> pa.Array:
    """Each record as JSON text (warehouse/sql/calls_raw_payload.sql)."""
    global _DB
    r = records.select([*SERVER_KEYS, "extra"])
    r = r.set_column(r.schema.get_field_index("sip_status"), "sip_status", sip_status)
    r = r.set_column(r.schema.get_field_index("duration"), "duration", duration)
    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect()
        cur = _DB.cursor()  # a cursor per call: threads never share one
    try:
        cur.register("r", r)
        texts = cur.sql(sql("calls_raw_payload")).to_arrow_table().column(0).combine_chunks()
    finally:
        cur.close()
    return texts.cast(pa.string())
