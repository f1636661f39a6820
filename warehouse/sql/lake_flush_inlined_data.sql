-- Lake maintenance, step 1 (warehouse/lake.py maintain): rows DuckLake inlined into the catalog
-- (small inserts) written out to Parquet, so the catalog database does not grow with them.
CALL ducklake_flush_inlined_data('warehouse');
