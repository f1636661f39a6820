-- The DuckLake lane's 003 (warehouse/schema/003_calls_raw_zstd.sql recreates calls_raw with a
-- ZSTD payload column; DuckLake takes no per-column compression). Here the same effect for every
-- table: the lake's Parquet files are written with ZSTD instead of DuckLake's default Snappy.
CALL warehouse.set_option('parquet_compression', 'zstd');
