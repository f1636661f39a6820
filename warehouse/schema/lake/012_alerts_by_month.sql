-- The DuckLake lane only (the file lane has no 012): the alerts' tables and the new models split
-- by month, as every other table is (007_partition_by_month).
ALTER TABLE alerts SET PARTITIONED BY (year(alerted_at), month(alerted_at));
ALTER TABLE alerts_raw SET PARTITIONED BY (year(alerted_at), month(alerted_at));
ALTER TABLE alerts_quarantine SET PARTITIONED BY (year(window_start), month(window_start));
ALTER TABLE alerts_daily SET PARTITIONED BY (year(day), month(day));
ALTER TABLE destinations_daily SET PARTITIONED BY (year(day), month(day));
