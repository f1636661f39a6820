-- The DuckLake (Warehouse._attach_lake): $target is `ducklake:<catalog>:<conninfo>`, $data_path
-- where its Parquet files go; both written as quoted literals (sql_files.attach: DuckDB 1.5 takes
-- no parameter there). The password is not in either: libpq reads PGPASSWORD or PGPASSFILE.
-- DATA_INLINING_ROW_LIMIT 0: every insert goes to Parquet, none into catalog tables. Inlined rows
-- are flushed by whichever writer commits next, and two runs flushing at once failed with
-- PostgreSQL's "could not serialize access due to concurrent delete", which DuckLake does not
-- retry (tests/e2e/test_lake.py, three parallel runs).
ATTACH $target AS warehouse (DATA_PATH $data_path, DATA_INLINING_ROW_LIMIT 0);
