-- The warehouse file for writing (Warehouse._attach); $target is the path, written as a quoted
-- literal (sql_files.attach: DuckDB 1.5 takes no parameter there).
-- ROW_GROUP_SIZE 30720 instead of DuckDB's 122,880: a window's transaction writes each row group
-- once it is full, while the next pages are fetched, and leaves at most one row group to COMMIT
-- (warehouse/load.py, docs/performance.md).
-- STORAGE_VERSION 'v1.5.0': a new file in DuckDB 1.5's format, not 1.5.5's default of 0.10.2's,
-- so calls_raw.payload is ZSTD-compressed (migration 003); the duckdb CLI 1.5.x reads it.
ATTACH $target AS warehouse (READ_WRITE, ROW_GROUP_SIZE 30720, STORAGE_VERSION 'v1.5.0');
