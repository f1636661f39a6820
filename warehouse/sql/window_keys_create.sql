-- The keys a WindowLoad wrote (calls: call_keys), kept on its connection past COMMIT for the
-- completeness check (warehouse/checks/calls_complete.sql). A temp table: in DuckDB's
-- memory_limit, spilled to disk beyond it, so a big day's keys cost the process no memory of its
-- own.
CREATE OR REPLACE TEMP TABLE _window_keys (key VARCHAR NOT NULL);
