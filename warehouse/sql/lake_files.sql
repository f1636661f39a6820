-- The lake's size in files and snapshots (the maintenance asset's metadata, before and after):
-- live data files and delete files (of the current snapshot), every data file the catalog still
-- tracks (live or kept for time travel), snapshots, files waiting for deletion.
SELECT
    (SELECT count(*) FROM __ducklake_metadata_warehouse.ducklake_data_file AS f
     WHERE f.end_snapshot IS NULL) AS live_data_files,
    (SELECT count(*) FROM __ducklake_metadata_warehouse.ducklake_delete_file AS f
     WHERE f.end_snapshot IS NULL) AS live_delete_files,
    (SELECT count(*) FROM __ducklake_metadata_warehouse.ducklake_data_file) AS tracked_data_files,
    (SELECT count(*) FROM __ducklake_metadata_warehouse.ducklake_snapshot) AS snapshots,
    (SELECT count(*) FROM __ducklake_metadata_warehouse.ducklake_files_scheduled_for_deletion)
        AS files_awaiting_deletion;
