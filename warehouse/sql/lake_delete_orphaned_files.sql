-- Lake maintenance, step 6: files in the data path that no snapshot knows (a writer killed
-- between writing a Parquet file and committing) older than $before, removed.
CALL ducklake_delete_orphaned_files('warehouse', older_than => $before);
