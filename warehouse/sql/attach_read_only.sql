-- The warehouse file for reading only (Warehouse._attach with read_only=True); $target is the
-- path, written as a quoted literal (sql_files.attach: DuckDB 1.5 takes no parameter there).
ATTACH $target AS warehouse (READ_ONLY);
