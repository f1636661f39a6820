-- Model tables, rebuilt one day at a time by warehouse/models/<table>.sql (see their headers).
CREATE TABLE IF NOT EXISTS call_durations_daily (
    day DATE NOT NULL,
    account_sid VARCHAR,
    direction VARCHAR,
    trunk VARCHAR,
    answered_calls BIGINT NOT NULL,
    talk_seconds BIGINT NOT NULL,
    mean_duration DOUBLE,
    median_duration DOUBLE,
    p90_duration DOUBLE,
    p99_duration DOUBLE,
    max_duration INTEGER
);

CREATE TABLE IF NOT EXISTS answer_rates_daily (
    day DATE NOT NULL,
    account_sid VARCHAR,
    direction VARCHAR,
    trunk VARCHAR,
    attempts BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    answer_rate DOUBLE NOT NULL,
    failures_4xx BIGINT NOT NULL,
    failures_5xx BIGINT NOT NULL,
    failures_6xx BIGINT NOT NULL,
    top_termination_reason VARCHAR
);
