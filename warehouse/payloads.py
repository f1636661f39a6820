"""calls_raw payloads of records that arrived as Arrow columns: each record as JSON text.

A record read by pipelines/jambonz/columnar.py has no text of its own (slicing it from the body
would cost a Python scan per record); DuckDB's to_json renders the columns back into the record,
its keys in the order given, its timestamps as the text received, its unknown keys after them
(warehouse/sql/calls_raw_payload.sql). Records that arrived as dicts keep the text they came in.
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sql_files import sql

_DB: duckdb.DuckDBPyConnection | None = None  # in memory; each call takes its own cursor
_DB_LOCK = threading.Lock()


def record_json(records: pa.Table, extra: pa.Array) -> pa.Array:
    """The JSON text of each row of `records` (its columns as the record's keys, in order), with
    the JSON object `extra[i]` (or null) merged in after them (`{"a":1}` becomes `,"a":1}` in
    place of the closing brace)."""
    global _DB
    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect()
        cur = _DB.cursor()  # a cursor per call: threads never share one
    try:
        rel = cur.from_arrow(records).query("r", sql("calls_raw_payload"))
        assert rel is not None  # a SELECT always has a relation
        texts = rel.to_arrow_table().column(0).combine_chunks().cast(pa.string())
    finally:
        cur.close()
    if extra.null_count == len(extra):
        return texts
    has = pc.is_valid(extra)  # few rows: only theirs are rewritten
    rows = pc.indices_nonzero(has)
    head = pc.utf8_slice_codeunits(texts.take(rows), 0, -1)
    tail = pc.utf8_slice_codeunits(extra.take(rows), 1)
    return pc.replace_with_mask(texts, has, pc.binary_join_element_wise(head, tail, ","))
