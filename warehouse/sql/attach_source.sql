-- The warehouse file a migration copies from (warehouse/migrate.py), never written; $target is
-- its path, written as a quoted literal (sql_files.attach: DuckDB 1.5 takes no parameter there).
ATTACH $target AS src (READ_ONLY);
