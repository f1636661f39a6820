-- Lake maintenance, step 5: files scheduled for deletion before $before removed from the data
-- path. The delay lets a query that started on an older snapshot finish reading them.
CALL ducklake_cleanup_old_files('warehouse', older_than => $before);
