-- calls_raw.payload (~1 KB of JSON a call) stored with ZSTD instead of DuckDB's default string
-- encoding (dictionary/FSST, chosen by analysing every segment): writing a 200k-call day costs
-- ~20% less DuckDB CPU (3.9 s instead of 4.9 s) and the file is smaller (55 MB instead of
-- 88 MB). Only the physical encoding changes: `SELECT payload FROM calls_raw` returns the same
-- JSON text. Files made before this migration get their calls_raw rebuilt once, in the
-- migration's transaction.
CREATE TABLE calls_raw_zstd (
    call_key VARCHAR NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    account_sid VARCHAR,
    payload JSON USING COMPRESSION zstd NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);
INSERT INTO calls_raw_zstd BY NAME SELECT r.* FROM calls_raw AS r;
DROP TABLE calls_raw;
ALTER TABLE calls_raw_zstd RENAME TO calls_raw;
