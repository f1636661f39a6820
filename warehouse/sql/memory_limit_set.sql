-- DuckDB's memory_limit for this database: LOAD_MEMORY_LIMIT while a window loads, then the
-- connection's own again (warehouse/load.py WindowLoad).
SET memory_limit = $limit;
