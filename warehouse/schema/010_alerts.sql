-- jambonz alerts (the Alerts stream: refused calls at the call limit, webhook and speech
-- failures, ...), their raw payloads and quarantine, as calls has (contract:
-- warehouse/tables.py ALERTS_COLUMNS); and the models alerts_daily and destinations_daily. No
-- PRIMARY KEY, as for calls: the loader keeps alert_key unique, scoped by alerted_at.
CREATE TABLE IF NOT EXISTS alerts (
    alert_key VARCHAR NOT NULL,
    alerted_at TIMESTAMPTZ NOT NULL,
    account_sid VARCHAR,
    service_provider_sid VARCHAR,
    alert_type VARCHAR,
    vendor VARCHAR,
    message VARCHAR,
    detail VARCHAR,
    extra JSON,
    synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS alerts_raw (
    alert_key VARCHAR NOT NULL,
    alerted_at TIMESTAMPTZ NOT NULL,
    account_sid VARCHAR,
    payload JSON NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS alerts_quarantine (
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

-- alerts_daily: alerts per local day, account and type (warehouse/models/alerts_daily.sql)
CREATE TABLE IF NOT EXISTS alerts_daily (
    day DATE NOT NULL,
    account_sid VARCHAR,
    alert_type VARCHAR,
    alerts BIGINT NOT NULL,
    complete BOOLEAN
);

-- destinations_daily: calls per local day, account, direction, trunk and the far end's country
-- (warehouse/models/destinations_daily.sql)
CREATE TABLE IF NOT EXISTS destinations_daily (
    day DATE NOT NULL,
    account_sid VARCHAR,
    direction VARCHAR,
    trunk VARCHAR,
    country VARCHAR,
    attempts BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    asr DOUBLE NOT NULL,
    talk_seconds BIGINT NOT NULL,
    acd_s DOUBLE,
    short_calls BIGINT NOT NULL,
    cost DOUBLE,
    complete BOOLEAN
);
