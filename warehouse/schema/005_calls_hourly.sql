-- calls_hourly: attempts and concurrency per local hour (warehouse/models/calls_hourly.sql).
CREATE TABLE IF NOT EXISTS calls_hourly (
    hour TIMESTAMPTZ NOT NULL,
    day DATE NOT NULL,
    account_sid VARCHAR,
    direction VARCHAR,
    trunk VARCHAR,
    attempts BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    talk_seconds BIGINT NOT NULL,
    peak_concurrent BIGINT NOT NULL
);
