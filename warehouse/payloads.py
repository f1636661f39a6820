"""calls_raw payloads of records that arrived as Arrow columns: each record as JSON text.

A record read by pipelines/jambonz/columnar.py has no text of its own (slicing it from the body
would cost a Python scan per record); DuckDB's to_json renders the columns back into the record,
its keys in the order given, its timestamps as the text received, its unknown keys after them
(warehouse/sql/calls_raw_payload.sql, which also splices those in: one pass, one copy of the
texts). Records that arrived as dicts are rendered by json.dumps (pipelines/normalize.py).
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa

from warehouse.sql_files import sql

_DB: duckdb.DuckDBPyConnection | None = None  # in memory; each call takes its own cursor
_DB_LOCK = threading.Lock()


def record_json(records: pa.Table, extra: pa.Array) -> pa.ChunkedArray:
    """The JSON text of each row of `records` (its columns as the record's keys, in order), with
    the JSON object `extra[i]` (or null) merged in after them."""
    global _DB
    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect()
        cur = _DB.cursor()  # a cursor per call: threads never share one
    try:
        rel = cur.from_arrow(records.append_column("extra", extra))
        texts = rel.query("r", sql("calls_raw_payload"))
        assert texts is not None  # a SELECT always has a relation
        return texts.to_arrow_table().column(0).cast(pa.string())
    finally:
        cur.close()
