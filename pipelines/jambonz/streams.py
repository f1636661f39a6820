"""What a jambonz stream is, and how one page of it becomes Arrow: the source's edge.

A `Stream` is a spec: the endpoint (`/v1/Accounts/{sid}/<name>`, and the service-provider
route), the record's fields (server key, kind, warehouse column), the time the API windows on,
the key rule, and the warehouse table. RecentCalls (RECENT_CALLS) is the first; another stream of
the same API is another spec, read by the same transport, pager, normalizer and loader.

`read_page(stream, body)` turns a 200 body into a `Page` whose records are one `Records`: an
Arrow table, each record's identity (its key) and its time in nanoseconds. The common page is
read by pyarrow's JSON reader in C++ (no Python object per record); a page Arrow cannot hold
exactly (the docs' dialect, a value of another type, a missing key, nested values) is read by
json.loads and converted once, here. Nothing downstream branches on how a page was read: a
column is typed as its values allow, and a column whose values have no one Arrow type is
`arrow.json` (each value's JSON text). In a column of a field, null is a JSON null; in a column of
an unknown key, null is an absent key (an `arrow.json` column: SQL NULL absent, `null` a null).

Times are integer nanoseconds since the epoch: the server keeps up to 9 fraction digits and a
window's inclusive end is sent at nanosecond precision, which a `datetime` cannot hold.
Pure: no I/O, no sleeps, no API key, no DuckDB.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

NS_PER_S = 1_000_000_000
UTC_NS = pa.timestamp("ns", tz="UTC")
JSON = pa.json_(pa.string())  # a column of JSON values of no one type (arrow.json)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_MAX = 2**63 - 1  # a time must fit timestamp[ns]: 1970-01-01 .. 2262-04-11
# a time as the deployed server writes it: UTC with `Z`, 0-9 fraction digits
STRICT_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)
SURROGATE_PREFIX = "nosid:"
INVALID_PREFIX = "invalid:"

Kind = Literal["text", "flag", "int32", "int64", "double", "time"]
# how the server's JSON reader types a field of each kind (numbers: `752` and `752.0` alike)
_WIRE: dict[str, pa.DataType] = {
    "text": pa.string(),
    "flag": pa.bool_(),
    "int32": pa.float64(),
    "int64": pa.float64(),
    "double": pa.float64(),
    "time": pa.string(),
}


@dataclass(frozen=True)
class Field:
    """One key of the server's records: its kind and the warehouse column it fills."""

    key: str
    kind: Kind
    column: str
    aliases: tuple[str, ...] = ()  # the docs page's names for the same key
    # a key a server may send or not (RecentCalls' `cost` on newer servers): on every record of
    # a page (null where none), on some only (absent elsewhere), or on none; every other key is
    # on every record
    optional: bool = False


@dataclass(frozen=True)
class Stream:
    """A jambonz list endpoint, paged by `page`/`count` over [start, end] windows."""

    name: str  # the route's last segment: /v1/Accounts/{sid}/<name>
    fields: tuple[Field, ...]  # the server's keys, in its order
    time_key: str  # what `start`/`end` select on: a record outside the window is dropped
    key_column: str  # the table's key column, filled by the key rule
    table: str  # the warehouse table; its SQL files are warehouse/sql/<table>_<operation>.sql
    # each record's key from its table and times; None where it has none (see `read_page`)
    table_identities: Callable[[pa.Table, list[int | None]], list[str | None]]
    # the same rule on one record as json.loads gave it (never None)
    identity: Callable[[dict[str, Any], int | None], str]
    no_key: str  # the quarantine's reason for a record the rule gives no key

    @property
    def server_keys(self) -> tuple[str, ...]:
        """The keys on every record, in the server's order."""
        return tuple(f.key for f in self.fields if not f.optional)

    @property
    def known_keys(self) -> frozenset[str]:
        """Every key a field reads; any other key is unknown (kept in `extra`)."""
        return frozenset(k for f in self.fields for k in (f.key, *f.aliases))

    @property
    def required_keys(self) -> frozenset[str]:
        """The keys of the fields every record carries: there, null is a JSON null (elsewhere
        a null in a column is a key the record lacks)."""
        return frozenset(k for f in self.fields if not f.optional for k in (f.key, *f.aliases))

    @property
    def required(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.optional)


@dataclass(frozen=True)
class Scope:
    """Whose records: one account, or every account of a service provider."""

    kind: Literal["account", "service_provider"]
    sid: str

    @classmethod
    def account(cls, sid: str) -> Scope:
        return cls("account", sid)

    @classmethod
    def service_provider(cls, sid: str) -> Scope:
        return cls("service_provider", sid)

    def path(self, stream: Stream) -> str:
        owner = "Accounts" if self.kind == "account" else "ServiceProviders"
        return f"/v1/{owner}/{self.sid}/{stream.name}"


@dataclass(frozen=True)
class Window:
    """A half-open UTC window [start, end); both datetimes are timezone-aware."""

    start: datetime
    end: datetime


def describe(scope: Scope, window: Window) -> str:
    """`account <sid> window [start, end)` for messages: what a person needs to find the sync."""
    kind = "account" if scope.kind == "account" else "service provider"
    return f"{kind} {scope.sid} window [{window.start.isoformat()}, {window.end.isoformat()})"


class BadBodyError(ValueError):
    """A 200 answer whose body is not the stream's envelope (truncated, HTML, wrong shape)."""


# --- time ----------------------------------------------------------------------------------


def to_ns(dt: datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact, no float rounding)."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: windows must be timezone-aware")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000


def format_ns(ns: int) -> str:
    """RFC 3339 UTC with `Z` and 9 fraction digits: never a `+` (a raw `+` decodes to a space)."""
    secs, frac = divmod(ns, NS_PER_S)
    base = _EPOCH + timedelta(seconds=secs)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_instant(value: Any) -> int:
    """A time (RFC 3339 with 0-9 fraction digits, Z or offset; or epoch seconds) -> ns.

    Epoch seconds as a float are read to the microsecond, the precision a float holds at
    today's epoch. Raises ValueError on anything else: no zone, epoch digits as text, padding
    are not times (never guessed into another day).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value * NS_PER_S
    if isinstance(value, float) and math.isfinite(value):
        whole_s = math.floor(value)
        return whole_s * NS_PER_S + round((value - whole_s) * 1_000_000) * 1_000
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None or m.group(8) is None:
        raise ValueError(f"not a time: {value!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    base = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
    )
    ns = to_ns(base) + (int(frac.ljust(9, "0")) if frac else 0)
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * NS_PER_S
    return ns


def parse_times(values: pa.Array | pa.ChunkedArray | list[Any]) -> pa.Array | pa.ChunkedArray:
    """Times of either dialect -> timestamp[ns, UTC]; null where missing or unreadable.

    Readable is what parse_instant reads, between 1970 and 2262. A column in the server's own
    shape (UTC with `Z`) is cast by Arrow in one call; anything else is read value by value.
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)) and values.type == JSON:
        values = decoded(values)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        with contextlib.suppress(pa.ArrowException, TypeError, ValueError):
            values = pa.array(values, pa.string())  # else not all text: read value by value
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        # every present value in the server's shape (pc.all skips the nulls): cast at once
        if (
            pa.types.is_string(values.type)
            and pc.all(pc.match_substring_regex(values, STRICT_UTC)).as_py() is not False
        ):
            try:
                ns = values.cast(UTC_NS)
            except (pa.ArrowException, ValueError, OverflowError):
                pass  # a date Arrow refuses (month 13): read value by value to find it
            else:
                negative = pc.less(ns.cast(pa.int64()), 0)
                return pc.if_else(negative, pa.scalar(None, UTC_NS), ns)
        values = values.to_pylist()
    out: list[int | None] = []
    for value in values:
        try:
            ns = parse_instant(value) if value is not None else None
        except ValueError:
            ns = None
        out.append(ns if ns is not None and 0 <= ns <= _NS_MAX else None)
    return pa.array(out, pa.int64()).cast(UTC_NS)


def _instants(values: pa.Array | pa.ChunkedArray | list[Any]) -> list[int | None]:
    return parse_times(values).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


# --- records -------------------------------------------------------------------------------


def whole(value: Any) -> Any:
    """A float with no fraction as the int it equals; any other value as it is."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def canonical_json(record: dict[str, Any]) -> str:
    """Sorted keys, compact, whole numbers as integers (`752.0` is `752`): the same record always
    gives the same text, however its page was read (Arrow holds numbers as floats)."""
    return json.dumps(
        {k: whole(v) for k, v in record.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def decoded(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """An `arrow.json` column's values (None where absent)."""
    return [None if t is None else json.loads(t) for t in column.to_pylist()]


@dataclass(frozen=True)
class Records:
    """Records of one stream as Arrow columns, with each one's key and time (ns, None when
    unreadable): the one shape from the page to the normalizer."""

    table: pa.Table
    keys: list[str]
    instants: list[int | None]
    # whether a text may hold a character JSON escapes (`"`, `\`, a control character): False
    # when the page had no backslash at all, which spares the payloads their escaping
    escapes: bool = True
    # the optional fields every record carries: a null there is a JSON null, not an absent key
    present: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def take(self, rows: list[int]) -> Records:
        if len(rows) == len(self):
            return self
        table = self.table.take(pa.array(rows, pa.int64()))
        keys, instants = [self.keys[i] for i in rows], [self.instants[i] for i in rows]
        return Records(table, keys, instants, self.escapes, self.present)

    def nulls(self, known: frozenset[str]) -> frozenset[str]:
        """The keys whose null is a JSON null: `known` (Stream.required_keys) and `present`."""
        return known | self.present if self.present else known

    def record(self, i: int, known: frozenset[str]) -> dict[str, Any]:
        """Record i as json.loads would give it (its keys in column order). known: the keys
        every record carries (Stream.required_keys): a null there is a JSON null."""
        known = self.nulls(known)
        out: dict[str, Any] = {}
        for name, column in zip(self.table.column_names, self.table.columns, strict=True):
            if column.type == JSON:
                text = column[i].as_py()
                if text is not None:
                    out[name] = json.loads(text)
                continue
            value = column[i].as_py()
            if value is not None or name in known:
                out[name] = value
        return out


def join(parts: list[Records], known: frozenset[str]) -> list[Records]:
    """Records of several pages as one (normalized at once) when the columns of the keys in
    `known` (Stream.required_keys) agree; other keys one page lacks are absent there (nulls).
    Parts that cannot join stay apart."""
    if len(parts) <= 1:
        return parts
    head = parts[0].table.schema
    fields = [f for f in head if f.name in known]
    if any([f for f in p.table.schema if f.name in known] != fields for p in parts[1:]):
        return parts
    if any(p.present != parts[0].present for p in parts[1:]):
        return parts  # a null means another thing in each
    try:
        table = pa.concat_tables([p.table for p in parts], promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return parts
    keys = [k for p in parts for k in p.keys]
    instants = [t for p in parts for t in p.instants]
    escapes = any(p.escapes for p in parts)
    return [Records(table, keys, instants, escapes, parts[0].present)]


@dataclass(frozen=True)
class Page:
    """One envelope in either dialect (docs: `batch`; server: `page_size`)."""

    total: int
    page: int | None
    page_size: int | None
    records: Records
    columnar: bool  # read by Arrow's JSON reader (else by json.loads, then converted)

    @property
    def size(self) -> int:
        return len(self.records)


def read_page(stream: Stream, body: bytes) -> Page:
    """A 200 body as a Page; BadBodyError for a truncated, non-JSON or wrong-shape body."""
    return _read_columnar(stream, body) or _read_json(stream, body)


_ENVELOPE_KEYS = ("total", "page", "page_size", "batch", "data")
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 22)
# unknown keys taken by Arrow's reader: their JSON value and Arrow's reading of it are the same
# (a float is, unless whole: see _exact)
_EXTRA_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
_EXACT = 2**53  # float64 holds every integer up to here
_PARSE: dict[str, pj.ParseOptions] = {}


def _parse_options(stream: Stream) -> pj.ParseOptions:
    if stream.name not in _PARSE:
        record = pa.struct([pa.field(f.key, _WIRE[f.kind]) for f in stream.required])
        # the server sends total as a number, page and page_size as strings ("500")
        envelope = pa.schema(
            [pa.field("total", pa.int64())]
            + [pa.field(k, pa.string()) for k in _ENVELOPE_KEYS[1:-1]]
            + [pa.field("data", pa.list_(record))]
        )
        _PARSE[stream.name] = pj.ParseOptions(
            explicit_schema=envelope, unexpected_field_behavior="infer"
        )
    return _PARSE[stream.name]


def _read_columnar(stream: Stream, body: bytes) -> Page | None:
    """The page read by Arrow in C++ (the GIL released); None unless Arrow holds it exactly:
    the server's dialect, every field on every record, no key repeated, unknown keys only as
    text, booleans or numbers that are not whole floats, numbers within 2^53, and a key for
    every record. Whether a value is good is the normalizer's business."""
    try:
        doc = pj.read_json(
            io.BytesIO(body), read_options=_READ, parse_options=_parse_options(stream)
        )
    except (pa.ArrowException, ValueError, TypeError):
        return None
    if doc.num_rows != 1 or doc.schema.names != list(_ENVELOPE_KEYS):
        return None  # several documents, or an unknown envelope key
    env = {k: doc.column(k)[0].as_py() for k in _ENVELOPE_KEYS[:-1]}
    data = doc.column("data").combine_chunks()
    total, page, size, batch = env.values()
    if total is None or total < 0 or data.null_count or (size is not None and batch is not None):
        return None  # _read_json names what is wrong (or takes page_size over batch)
    size = batch if size is None else size
    if not all(v is None or (v.isascii() and v.isdigit()) for v in (page, size)):
        return None
    table = pa.Table.from_struct_array(data.values)
    present = _exact(stream, table, body, sum(v is not None for v in env.values()) + 1)
    if present is None:
        return None
    instants = _instants(table.column(stream.time_key).combine_chunks())
    keys = stream.table_identities(table, instants)
    if None in keys:
        return None  # a record with no key: its JSON names it in the quarantine
    return Page(
        total=int(total),
        page=int(page) if page is not None else None,
        page_size=int(size) if size is not None else None,
        records=Records(table, keys, instants, b"\\" in body, present),  # type: ignore[arg-type]
        columnar=True,
    )


def _exact(
    stream: Stream, table: pa.Table, body: bytes, envelope_keys: int
) -> frozenset[str] | None:
    """Whether the Arrow reading is the JSON exactly (see _read_columnar): None when not, else
    the optional fields every record carries (Records.present)."""
    n, fields = table.num_rows, stream.required
    extras = table.column_names[len(fields) :]  # unknown keys, and optional fields
    aliases = stream.required_keys
    optional = {f.key: f for f in stream.fields if f.optional}
    if any(k in aliases or table.schema.field(k).type not in _EXTRA_TYPES for k in extras):
        return None  # the docs dialect's alias, or a value Arrow reads otherwise
    whole_kinds = ("int32", "int64")
    ints = [f.key for f in fields if f.kind in whole_kinds]
    for k in extras:
        col = table.column(k)
        if col.type != pa.float64():
            continue
        if k in optional:  # a field: its column is typed by its kind, `0` and `0.0` alike
            ints += [k] if optional[k].kind in whole_kinds else []
        elif pc.any(pc.equal(pc.trunc(col), col)).as_py():
            return None  # `1` and `1.0` both read as 1.0: json.loads tells them apart
    for k in ints:
        span = pc.min_max(pc.abs(table.column(k)))
        if span["max"].as_py() is not None and span["max"].as_py() > _EXACT:
            return None
    keys_explained = envelope_keys + n * len(fields)
    present = set()
    for k in extras:
        nulls = table.column(k).null_count
        if k in optional and nulls and body.count(b'"' + k.encode() + b'":') == n:
            present.add(k)  # on every record, null where none
            keys_explained += n
        else:
            keys_explained += n - nulls
    # a key missing, repeated, null where unknown, or `":` inside a string: read by json.loads
    return frozenset(present) if body.count(b'":') == keys_explained else None


def _as_int(value: Any, name: str) -> int:
    """Envelope numbers: ints, floats with no fraction (752.0) or numeric strings ("500")."""
    if isinstance(value, bool):
        raise BadBodyError(f"{name} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            raise BadBodyError(f"{name} is not a number: {value[:40]!r}") from None
        if f.is_integer():
            return int(f)
    raise BadBodyError(f"{name} is not a whole number: {str(value)[:40]!r}")


class Envelope(NamedTuple):
    total: int
    page: int | None
    page_size: int | None
    data: list[dict[str, Any]]


def parse_envelope(body: bytes) -> Envelope:
    """A body read by json.loads; BadBodyError names what is wrong with a truncated, non-JSON
    or wrong-shape one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = body[:60].decode("utf-8", "replace")
        raise BadBodyError(f"not JSON ({len(body)} bytes, starts {snippet!r})") from None
    if not isinstance(doc, dict):
        raise BadBodyError(f"JSON {type(doc).__name__}, not an object")
    if "total" not in doc or "data" not in doc:
        raise BadBodyError(f"envelope without total/data (keys: {sorted(doc)[:8]})")
    data = doc["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BadBodyError("data is not a list of objects")
    total = _as_int(doc["total"], "total")
    if total < 0:
        raise BadBodyError(f"negative total {total}")
    page = _as_int(doc["page"], "page") if doc.get("page") is not None else None
    size_raw = doc.get("page_size", doc.get("batch"))
    size = _as_int(size_raw, "page_size") if size_raw is not None else None
    return Envelope(total, page, size, data)


def _read_json(stream: Stream, body: bytes) -> Page:
    total, page, size, data = parse_envelope(body)
    return Page(total, page, size, from_dicts(stream, data), columnar=False)


def from_dicts(stream: Stream, data: list[dict[str, Any]]) -> Records:
    """Records as json.loads gave them, as Arrow (see the module docstring for the columns)."""
    instants = _instants([r.get(stream.time_key) for r in data])
    keys = [stream.identity(r, ns) for r, ns in zip(data, instants, strict=True)]
    names = list(dict.fromkeys(k for r in data for k in r))
    required = stream.required_keys
    optional = {f.key for f in stream.fields if f.optional}
    missing = object()
    columns = []
    present = set()
    for name in names:
        values = [r.get(name, missing) for r in data]
        if name in optional and all(v is not missing for v in values):
            present.add(name)  # on every record: a null is a JSON null
        columns.append(_column(values, missing, name in required or name in present))
    # a page of empty objects still has its rows
    table = pa.Table.from_arrays([*columns, pa.nulls(len(data))], [*names, ""]).drop_columns([""])
    return Records(table, keys, instants, present=frozenset(present))


_TYPED = {str: pa.string(), bool: pa.bool_(), float: pa.float64(), int: pa.int64()}


def _column(values: list[Any], missing: object, field: bool) -> pa.Array:
    """A typed column when the values allow it (a field: on every record; an unknown key: never
    null), else `arrow.json` (absent: SQL NULL)."""
    present = [v for v in values if v is not missing]
    types = {type(v) for v in present if v is not None}
    nulls = len(present) - sum(1 for v in present if v is not None)
    typed = len(types) <= 1 and (len(present) == len(values) if field else nulls == 0)
    if typed and types <= set(_TYPED):
        arrow_type = _TYPED[next(iter(types))] if types else pa.string()
        with contextlib.suppress(pa.ArrowException, OverflowError):
            return pa.array([None if v is missing else v for v in values], arrow_type)
    texts = [None if v is missing else _dumps(v) for v in values]
    return pa.ExtensionArray.from_storage(JSON, pa.array(texts, pa.string()))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# --- RecentCalls ---------------------------------------------------------------------------


def _call_identity(record: dict[str, Any], attempted_ns: int | None) -> str:
    """Which call a record is: its call_key in `calls`.

    call_sid when present; else SURROGATE_PREFIX + a hash of sip_callid (or sip_call_id),
    direction and attempted_at in whole seconds (so both dialects agree); for a record with
    neither (or with an unreadable attempted_at) INVALID_PREFIX + a hash of its canonical JSON
    (it will be quarantined, but stays distinct).
    """
    sid = record.get("call_sid")
    if type(sid) is str and sid:
        return sid
    sip = record.get("sip_callid")
    if sip is None:
        sip = record.get("sip_call_id")
    if type(sip) is str and sip and attempted_ns is not None:
        return surrogate_key(sip, record.get("direction"), attempted_ns // NS_PER_S)
    return INVALID_PREFIX + digest(canonical_json(record))


def surrogate_key(sip: str, direction: object, epoch_s: int) -> str:
    return SURROGATE_PREFIX + digest(f"{sip}|{direction}|{epoch_s}")


def _call_table_identities(table: pa.Table, instants: list[int | None]) -> list[str | None]:
    keys: list[str | None] = table.column("call_sid").to_pylist()
    nosid = [i for i, k in enumerate(keys) if not k]
    if nosid:
        sip = table.column("sip_callid")
        direction = table.column("direction")
        for i in nosid:
            sip_id, ns = sip[i].as_py(), instants[i]
            keys[i] = (
                surrogate_key(sip_id, direction[i].as_py(), ns // NS_PER_S)
                if sip_id and ns is not None
                else None
            )
    return keys


def _text(key: str, column: str | None = None, *aliases: str) -> Field:
    return Field(key, "text", column or key, aliases)


RECENT_CALLS = Stream(
    name="RecentCalls",
    # the 21 keys the deployed server sends on every record, in its order (fact sheet)
    fields=(
        Field("attempted_at", "time", "attempted_at"),
        _text("account_sid"),
        Field("answered", "flag", "answered"),
        Field("answered_at", "time", "answered_at"),
        _text("application_sid"),
        _text("call_sid"),
        _text("direction"),
        Field("duration", "int32", "duration"),
        _text("from", "from_number"),
        _text("host"),
        _text("recording_url"),
        _text("remote_host"),
        _text("service_provider_sid"),
        _text("sip_callid", None, "sip_call_id"),
        _text("sip_parent_callid"),
        Field("sip_status", "int32", "sip_status"),
        Field("terminated_at", "time", "terminated_at"),
        _text("termination_reason"),
        _text("to", "to_number"),
        _text("trace_id"),
        _text("trunk"),
        # calls rated by jambonz's managed carrier (@jambonz/time-series 0.5.0), after the rest
        Field("cost", "double", "cost", optional=True),
        Field("rate", "double", "rate", optional=True),
        Field("billed_seconds", "int64", "billed_seconds", optional=True),
    ),
    time_key="attempted_at",
    key_column="call_key",
    table="calls",
    table_identities=_call_table_identities,
    identity=_call_identity,
    no_key="call_sid and sip_callid/sip_call_id: both missing, the call has no identity",
)
SERVER_KEYS = RECENT_CALLS.server_keys
REQUIRED_KEYS = RECENT_CALLS.required_keys  # the keys on every record: a null there is JSON null


# --- Alerts --------------------------------------------------------------------------------

ALERT_TAGS = ("account_sid", "alert_type", "service_provider_sid", "vendor")


def alert_key(ns: int, tags: tuple[Any, ...]) -> str:
    """An alert's key: InfluxDB's identity of a point, its time to the nanosecond and its tags
    (as sent: "undefined" is a value), hashed."""
    return digest(json.dumps([ns, *tags], separators=(",", ":"), ensure_ascii=False, default=str))


def _alert_identity(record: dict[str, Any], ns: int | None) -> str:
    """Which alert a record is; INVALID_PREFIX + a hash of its JSON when its time is unreadable
    (it will be quarantined, but stays distinct)."""
    if ns is None:
        return INVALID_PREFIX + digest(canonical_json(record))
    return alert_key(ns, tuple(record.get(t) for t in ALERT_TAGS))


def _alert_table_identities(table: pa.Table, instants: list[int | None]) -> list[str | None]:
    tags = [table.column(t).to_pylist() for t in ALERT_TAGS]
    return [
        None if ns is None else alert_key(ns, row)
        for ns, row in zip(instants, zip(*tags, strict=True), strict=True)
    ]


ALERTS = Stream(
    name="Alerts",
    # the 7 keys the server sends on every record, in its order (docs/jambonz-alerts.md)
    fields=(
        Field("time", "time", "alerted_at"),
        _text("account_sid"),
        _text("alert_type"),
        _text("detail"),
        _text("message"),
        _text("service_provider_sid"),
        _text("vendor"),
    ),
    time_key="time",
    key_column="alert_key",
    table="alerts",
    table_identities=_alert_table_identities,
    identity=_alert_identity,
    no_key="time: missing or unreadable, the alert has no identity",
)
