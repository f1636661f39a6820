"""A RecentCalls page's bytes -> its records as Arrow columns, without Python objects per record.

json.loads builds a dict per record: ~20 us a call, all of it holding the GIL. Here pyarrow's
JSON reader parses the page in C++ with the GIL released (so the other fetch thread, the
normalizer and the writer run beside it) into columns typed as the server sends them: text,
booleans, numbers (float64: the server sends `752` and `752.0` alike). A page is read this way
only when Arrow holds it exactly: the server's dialect (the docs' epoch times or `sip_call_id`
fail the read), every server key on every record, no key repeated, unknown keys only as text,
booleans or numbers that are not whole floats, numbers within 2^53, and an identity for every
record. Anything else makes `read_page` return None and the page is read as dicts
(paging.parse_envelope). Whether the values are good (a time that reads, an integer in range) is
the normalizer's business (pipelines/normalize.py), the same for both readings.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipelines.jambonz.paging import Page
from pipelines.jambonz.records import KNOWN_KEYS, SERVER_KEYS, parse_times, table_identities

_TYPES = {"answered": pa.bool_(), "sip_status": pa.float64(), "duration": pa.float64()}
RECORD = pa.struct([pa.field(k, _TYPES.get(k, pa.string())) for k in SERVER_KEYS])
_ENVELOPE_KEYS = ("total", "page", "page_size", "batch", "data")
# the server sends total as a number, page and page_size as strings ("500"; captures 13, 60)
_ENVELOPE = pa.schema(
    [pa.field("total", pa.int64())]
    + [pa.field(k, pa.string()) for k in _ENVELOPE_KEYS[1:-1]]
    + [pa.field("data", pa.list_(RECORD))]
)
_PARSE = pj.ParseOptions(explicit_schema=_ENVELOPE, unexpected_field_behavior="infer")
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 22)
# unknown keys taken on this path: their JSON value and Arrow's reading of it are the same (a
# float is, unless whole: see read_page)
_EXTRA_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
_EXACT = 2**53  # float64 holds every integer up to here


def read_page(body: bytes) -> Page | None:
    """The page with its records as Arrow (Page.table); None when it must be read as dicts."""
    try:
        doc = pj.read_json(io.BytesIO(body), read_options=_READ, parse_options=_PARSE)
    except (pa.ArrowException, ValueError, TypeError):
        return None
    if doc.num_rows != 1 or doc.schema.names != list(_ENVELOPE_KEYS):
        return None  # several documents, or an unknown envelope key
    env = {k: doc.column(k)[0].as_py() for k in _ENVELOPE_KEYS[:-1]}
    data = doc.column("data").combine_chunks()
    total, page, size, batch = env.values()
    if total is None or total < 0 or data.null_count or (size is not None and batch is not None):
        return None  # parse_envelope names what is wrong (or takes page_size over batch)
    size = batch if size is None else size
    if not all(v is None or (v.isascii() and v.isdigit()) for v in (page, size)):
        return None
    records = pa.Table.from_struct_array(data.values)
    if not _exact(records, body, sum(v is not None for v in env.values()) + 1):
        return None
    instants = parse_times(records.column("attempted_at").combine_chunks())
    ns: list[int | None] = instants.cast(pa.int64()).to_pylist()
    keys = table_identities(records, ns)
    if None in keys:
        return None  # a call with no identity: quarantined from its dict, with its JSON
    return Page(
        total=int(total),
        page=int(page) if page is not None else None,
        page_size=int(size) if size is not None else None,
        data=[],
        table=records,
        keys=keys,  # type: ignore[arg-type]  # no None left
        instants=ns,
    )


def _exact(records: pa.Table, body: bytes, envelope_keys: int) -> bool:
    """Whether the Arrow reading is the JSON exactly (see the module docstring)."""
    n = records.num_rows
    extras = records.column_names[len(SERVER_KEYS) :]
    if any(k in KNOWN_KEYS or records.schema.field(k).type not in _EXTRA_TYPES for k in extras):
        return False  # the docs dialect's sip_call_id, or a value Arrow reads otherwise
    for k in extras:
        col = records.column(k)
        if col.type == pa.float64() and pc.any(pc.equal(pc.trunc(col), col)).as_py():
            return False  # `1` and `1.0` both read as 1.0: json.loads tells them apart
    for key in ("sip_status", "duration"):
        span = pc.min_max(pc.abs(records.column(key)))
        if span["max"].as_py() is not None and span["max"].as_py() > _EXACT:
            return False
    keys_explained = envelope_keys + n * len(SERVER_KEYS)
    keys_explained += sum(n - records.column(k).null_count for k in extras)
    # a key missing, repeated, null where unknown, or `":` inside a string: read as dicts
    return bool(body.count(b'":') == keys_explained)
