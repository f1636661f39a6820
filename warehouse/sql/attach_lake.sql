-- The DuckLake (Warehouse._attach_lake): $target is `ducklake:<catalog>:<conninfo>`, $data_path
-- where its Parquet files go; both written as quoted literals (sql_files.attach: DuckDB 1.5 takes
-- no parameter there). The password is not in either: libpq reads PGPASSWORD or PGPASSFILE.
ATTACH $target AS warehouse (DATA_PATH $data_path);
