-- Lake maintenance, step 4: snapshots older than $before expired (time travel reaches back to
-- $before, no further); the files only they used become scheduled for deletion.
CALL ducklake_expire_snapshots('warehouse', older_than => $before);
