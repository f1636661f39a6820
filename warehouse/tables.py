"""The shapes of the warehouse's tables, declared once.

`CALLS_SCHEMA` is the contract of the `calls` table (`ALERTS_SCHEMA` of `alerts`): column order,
names and types. The normalizer builds Arrow tables of exactly this schema, the loader writes
them, the tests and docs/models.md describe it. DuckDB types follow from Arrow's:
timestamp[us, UTC] -> TIMESTAMPTZ, int32 -> INTEGER, int64 -> BIGINT, float64 -> DOUBLE, and
`extra` (a JSON text) -> JSON.
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
    # added by migration 011 (ALTER TABLE appends): the calls rated by jambonz's managed carrier
    # (@jambonz/time-series 0.5.0) carry them; NULL when the record has none
    ("cost", pa.float64(), "what the call cost, in the carrier's currency"),
    ("rate", pa.float64(), "the rate the call was billed at, per minute"),
    ("billed_seconds", pa.int64(), "the seconds billed (the carrier's increments)"),
)

CALLS_SCHEMA: pa.Schema = pa.schema([(name, typ) for name, typ, _ in CALLS_COLUMNS])
CALL_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in CALLS_COLUMNS)

# `alerts`: one row per jambonz alert (an InfluxDB point: its time to the nanosecond and its tags)
ALERTS_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("alert_key", pa.string(), "unique key: a hash of the time as sent (to the ns) and the tags"),
    ("alerted_at", UTC_US, "when the alert happened (the API's `time`, kept to the microsecond)"),
    ("account_sid", pa.string(), "the account; NULL for service-provider alerts ('undefined')"),
    ("service_provider_sid", pa.string(), "the service provider; NULL when sent as 'undefined'"),
    ("alert_type", pa.string(), "free text: account-call-limit, webhook-failure, tts-failure, ..."),
    ("vendor", pa.string(), "speech vendor of speech alerts (google, microsoft, ...)"),
    ("message", pa.string(), "human-readable text"),
    ("detail", pa.string(), "optional free text"),
    ("extra", pa.string(), "JSON object of every record key no column holds"),
    ("synced_at", UTC_US, "when this row was last written"),
)
ALERTS_SCHEMA: pa.Schema = pa.schema([(name, typ) for name, typ, _ in ALERTS_COLUMNS])

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
# `alerts_raw`: the same for `alerts`
ALERTS_RAW_SCHEMA: pa.Schema = pa.schema(
    [("alert_key", pa.string()), ("alerted_at", UTC_US), *list(RAW_SCHEMA)[2:]]
)

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

# each stream's table (pipelines/jambonz/streams.py Stream.table) -> its contract, and that of
# its raw payloads (<table>_raw: the key, the time, account_sid, payload, synced_at). Its
# quarantine (<table>_quarantine) has QUARANTINE_SCHEMA.
SCHEMAS: dict[str, pa.Schema] = {"calls": CALLS_SCHEMA, "alerts": ALERTS_SCHEMA}
RAW_SCHEMAS: dict[str, pa.Schema] = {"calls": RAW_SCHEMA, "alerts": ALERTS_RAW_SCHEMA}
