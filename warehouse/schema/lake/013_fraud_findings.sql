-- fraud_findings, as in the file lane, split by month as every other table of the lake.
CREATE TABLE IF NOT EXISTS fraud_findings (
    day DATE NOT NULL,
    check_name VARCHAR NOT NULL,
    group_key VARCHAR NOT NULL,
    figures JSON NOT NULL,
    complete BOOLEAN
);
ALTER TABLE fraud_findings SET PARTITIONED BY (year(day), month(day));
