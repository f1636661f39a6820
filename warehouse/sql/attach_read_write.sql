-- The warehouse file for writing (Warehouse._attach). ROW_GROUP_SIZE 30720 instead of DuckDB's
-- 122,880: a window's transaction writes each row group once it is full, while the next pages are
-- fetched, and leaves at most one row group to COMMIT (warehouse/load.py, README Performance).
ATTACH $path AS warehouse (READ_WRITE, ROW_GROUP_SIZE 30720);
