-- The DuckLake lane only (the file lane has no 009): calls_day_syncs split by month of its day,
-- as every other table is (007_partition_by_month), so the maintenance merges within a month.
ALTER TABLE calls_day_syncs SET PARTITIONED BY (year(day), month(day));
