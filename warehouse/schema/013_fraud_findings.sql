-- fraud_findings: what the fraud checks flagged, one row per (day, check, group)
-- (warehouse/models/fraud_findings.sql; pipelines/fraud.py).
CREATE TABLE IF NOT EXISTS fraud_findings (
    day DATE NOT NULL,
    check_name VARCHAR NOT NULL,
    group_key VARCHAR NOT NULL,
    figures JSON NOT NULL,
    complete BOOLEAN
);
