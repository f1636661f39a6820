"""The shapes of the warehouse's tables, declared once.

`CALLS_SCHEMA` is the contract of the `calls` table: column order, names and types. The
normalizer builds Arrow tables of exactly this schema, the loader writes them, the tests and
docs/models.md describe it. DuckDB types follow from Arrow's: timestamp[us, UTC] -> TIMESTAMPTZ,
int32 -> INTEGER, and `extra` (a JSON text) -> JSON.
"""

from __future__ import annotations

import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

# (name, arrow type, meaning). The order is the table's column order.
CALLS_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("call_key", pa.string(), "unique key: call_sid, or 'nosid:' + a hash for calls without one"),
    ("call_sid", pa.string(), "jambonz call sid; NULL for inbound calls that failed early"),
    ("account_sid", pa.string(), "account the call belongs to"),
    ("service_provider_sid", pa.string(), "service provider of the account"),
    ("application_sid", pa.string(), "application that handled the call"),
    ("direction", pa.string(), "inbound or outbound"),
    ("from_number", pa.string(), "API `from`"),
    ("to_number", pa.string(), "API `to`"),
    ("answered", pa.bool_(), "whether the call was answered"),
    ("sip_status", pa.int32(), "final SIP status: 200 when connected, else the failure code"),
    ("duration", pa.int32(), "whole seconds from answer to hang-up; 0 when unanswered"),
    ("attempted_at", UTC_US, "when the call was attempted (the API's time axis)"),
    ("answered_at", UTC_US, "when answered; NULL when not (the 1970 sentinel becomes NULL)"),
    ("terminated_at", UTC_US, "when the call ended"),
    ("termination_reason", pa.string(), "free text: caller hungup, failed, ..."),
    ("host", pa.string(), "jambonz SBC that handled the call"),
    ("remote_host", pa.string(), "the far end's address"),
    ("trunk", pa.string(), "carrier name, user, sipUri or Microsoft Teams"),
    ("sip_callid", pa.string(), "SIP Call-ID (API `sip_callid` or `sip_call_id`)"),
    ("sip_parent_callid", pa.string(), "outbound legs: the A-leg's SIP Call-ID"),
    ("trace_id", pa.string(), "tracing id; 32 zeros when none"),
    ("recording_url", pa.string(), "path of the recording when the call was recorded"),
    ("extra", pa.string(), "JSON object of every record key no column holds"),
    ("synced_at", UTC_US, "when this row was last written"),
)

CALLS_SCHEMA: pa.Schema = pa.schema([(name, typ) for name, typ, _ in CALLS_COLUMNS])
CALL_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in CALLS_COLUMNS)

# `calls_raw`: the API's JSON of every row loaded into `calls` (inserted or changed), so the
# normalization can be replayed without re-fetching. One row per call_key, like `calls`.
RAW_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("call_key", pa.string(), "the row of `calls` this payload became"),
    ("attempted_at", UTC_US, "the call's attempted_at (scopes the upsert, like `calls`)"),
    ("account_sid", pa.string(), "account the call belongs to"),
    ("payload", pa.string(), "the record as received, JSON text (DuckDB JSON; JSON-equal)"),
    ("synced_at", UTC_US, "when this payload was written"),
)
RAW_SCHEMA: pa.Schema = pa.schema([(name, typ) for name, typ, _ in RAW_COLUMNS])

# `calls_quarantine`: records that could not become a row, and why. One row per (record, window).
QUARANTINE_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("quarantine_key", pa.string(), "hash of the canonical JSON and the window: one row each"),
    ("record_key", pa.string(), "the key the stream's rule gave the record (may be 'invalid:...')"),
    ("scope_sid", pa.string(), "the account or service provider whose window was synced"),
    ("account_sid", pa.string(), "the record's own account_sid when it had a string one"),
    ("window_start", UTC_US, "the synced window's start (inclusive)"),
    ("window_end", UTC_US, "the synced window's end (exclusive)"),
    ("reason", pa.string(), "the field and what is wrong with its value"),
    ("payload", pa.string(), "the record as canonical JSON text (sorted keys)"),
    ("quarantined_at", UTC_US, "when it was first quarantined"),
)
QUARANTINE_SCHEMA: pa.Schema = pa.schema([(name, typ) for name, typ, _ in QUARANTINE_COLUMNS])

# each stream's table (pipelines/jambonz/streams.py Stream.table) -> its contract
SCHEMAS: dict[str, pa.Schema] = {"calls": CALLS_SCHEMA}
