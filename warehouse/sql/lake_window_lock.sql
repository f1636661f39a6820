-- Run in the DuckLake catalog's PostgreSQL by psycopg2 (warehouse/lake.py window_lock), not in
-- DuckDB: wait at most timeout_ms for the session-level advisory lock of one window (key),
-- held until the session closes. Both values are bound by psycopg2.
SET lock_timeout = $timeout_ms;
SELECT pg_advisory_lock($key);
