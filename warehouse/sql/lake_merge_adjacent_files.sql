-- Lake maintenance, step 2: small Parquet files of a table merged into fewer, larger ones (each
-- day's load and model rebuild writes its own): the live file count stays bounded.
CALL ducklake_merge_adjacent_files('warehouse');
