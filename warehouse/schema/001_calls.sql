-- The calls table (contract: warehouse/tables.py CALLS_COLUMNS, in order), its raw payloads and
-- its quarantine. No PRIMARY KEY and no unique index on purpose: uniqueness of call_key is kept
-- by the loader, whose delete+insert is scoped by attempted_at so that DuckDB skips row groups by
-- min/max (a PK index costs 8-11 s per load and 2.6 GiB at 30M rows).
CREATE TABLE IF NOT EXISTS calls (
    call_key VARCHAR NOT NULL,
    call_sid VARCHAR,
    account_sid VARCHAR,
    service_provider_sid VARCHAR,
    application_sid VARCHAR,
    direction VARCHAR,
    from_number VARCHAR,
    to_number VARCHAR,
    answered BOOLEAN,
    sip_status INTEGER,
    duration INTEGER,
    attempted_at TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    terminated_at TIMESTAMPTZ,
    termination_reason VARCHAR,
    host VARCHAR,
    remote_host VARCHAR,
    trunk VARCHAR,
    sip_callid VARCHAR,
    sip_parent_callid VARCHAR,
    trace_id VARCHAR,
    recording_url VARCHAR,
    extra JSON,
    synced_at TIMESTAMPTZ NOT NULL
);

-- The API's JSON of each call as last inserted/changed: replay normalization without re-fetching.
CREATE TABLE IF NOT EXISTS calls_raw (
    call_key VARCHAR NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    account_sid VARCHAR,
    payload JSON NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);

-- Records that could not become a row of calls, and why; one row per (record, window).
CREATE TABLE IF NOT EXISTS calls_quarantine (
    quarantine_key VARCHAR NOT NULL,
    record_key VARCHAR,
    scope_sid VARCHAR,
    account_sid VARCHAR,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    reason VARCHAR NOT NULL,
    payload JSON NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
);
