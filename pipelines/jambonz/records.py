"""What a RecentCalls record is, in the API's terms: its keys, its identity, its times.

Which call a record is (window.py drops the copies pages repeat) and when it was attempted (it
drops what lies outside the window) are computed here, once per record, and travel with it to
pipelines/normalize.py, which keys `calls` by the same identity and reads `attempted_at` from the
same instant. `parse_times` is the one reader of a record's times.

Knows nothing of DuckDB, the warehouse or Dagster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.jambonz.paging import NS_PER_S, STRICT_UTC, parse_instant

SURROGATE_PREFIX = "nosid:"
INVALID_PREFIX = "invalid:"
UTC_NS = pa.timestamp("ns", tz="UTC")
_NS_MAX = 2**63 - 1  # a time must fit timestamp[ns]: 1970-01-01 .. 2262-04-11

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
# The docs page's names for server keys (its dialect also sends times as epoch seconds).
DOCS_ALIASES: dict[str, str] = {"sip_call_id": "sip_callid"}
# Record keys the API defines; every other key is unknown (the warehouse keeps it in `extra`).
KNOWN_KEYS = frozenset(SERVER_KEYS) | frozenset(DOCS_ALIASES)


def canonical_json(record: dict[str, Any]) -> str:
    """Sorted keys, compact, whole numbers as integers (`752.0` is `752`): the same record always
    gives the same text, whether it was read as dicts or as Arrow columns (which hold numbers as
    floats)."""
    return json.dumps(
        {k: whole(v) for k, v in record.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def whole(value: Any) -> Any:
    """A float with no fraction as the int it equals; any other value as it is."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def surrogate_key(sip: str, direction: object, epoch_s: int) -> str:
    """The identity of a call without call_sid (see record_identity)."""
    return SURROGATE_PREFIX + digest(f"{sip}|{direction}|{epoch_s}")


def parse_times(values: pa.Array | pa.ChunkedArray | list[Any]) -> pa.Array | pa.ChunkedArray:
    """Times of either dialect -> timestamp[ns, UTC]; null where missing or unreadable.

    Readable is what paging.parse_instant reads (RFC 3339 with 0-9 fraction digits and a zone,
    or epoch seconds) between 1970 and 2262. A column in the server's own shape (UTC with `Z`)
    is cast by Arrow in one call; anything else is read value by value.
    """
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


def record_identity(record: dict[str, Any], attempted_ns: int | None = None) -> str:
    """Which call a record is: the key it will have in `calls` (call_key).

    call_sid when present; else SURROGATE_PREFIX + a hash of sip_callid (or sip_call_id),
    direction and attempted_at truncated to whole seconds (so both dialects agree); for a record
    with neither (or with an unreadable attempted_at) INVALID_PREFIX + a hash of its canonical
    JSON (it will be quarantined, but stays distinct). attempted_ns: the record's attempted_at as
    parse_times read it, when the caller has it.
    """
    sid = record.get("call_sid")
    if type(sid) is str and sid:
        return sid
    sip = record.get("sip_callid")
    if sip is None:
        sip = record.get("sip_call_id")
    if type(sip) is str and sip:
        if attempted_ns is None:
            attempted_ns = parse_times([record.get("attempted_at")])[0].value
        if attempted_ns is not None:
            return surrogate_key(sip, record.get("direction"), attempted_ns // NS_PER_S)
    return INVALID_PREFIX + digest(canonical_json(record))


def identities(records: list[dict[str, Any]], instants: list[int | None]) -> list[str]:
    """record_identity of each record (instants[i]: its attempted_at read by parse_times); the
    common case, a call_sid, without a call per record."""
    return [
        sid if type(sid := r.get("call_sid")) is str and sid else record_identity(r, ns)
        for r, ns in zip(records, instants, strict=True)
    ]


def table_identities(table: pa.Table, instants: list[int | None]) -> list[str | None]:
    """record_identity of each row of a page read as Arrow (server keys, typed); None for a row
    with no identity at all (its JSON is not at hand here: the caller reads the page as dicts)."""
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
