-- Run in the DuckLake catalog's PostgreSQL by psycopg2 (warehouse/lake.py advisory_lock), not in
-- DuckDB: wait at most timeout_ms for the session-level advisory lock `key` (a window, the schema),
-- held until the session closes. Both values are bound by psycopg2.
-- A killed run's socket closes and PostgreSQL drops its lock at once; a machine that vanished
-- sends nothing, so the server probes the session after 30 s idle, every 10 s, 3 times: its
-- lock is freed within about a minute instead of the kernel's two hours.
SET tcp_keepalives_idle = 30;
SET tcp_keepalives_interval = 10;
SET tcp_keepalives_count = 3;
SET lock_timeout = $timeout_ms;
SELECT pg_advisory_lock($key);
