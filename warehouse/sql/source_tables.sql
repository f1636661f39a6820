-- The tables of the warehouse attached as `src` (python -m warehouse.migrate --from a file): an
-- older release's lacks the newer ones.
SELECT table_name FROM duckdb_tables() WHERE database_name = 'src';
