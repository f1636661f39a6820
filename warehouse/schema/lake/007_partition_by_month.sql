-- The DuckLake lane only (the file lane has no 007): every table's Parquet files split by month
-- of the call (attempted_at) or of the model's day. A day's upsert, look-back and model rebuild
-- then read one month's files, and the maintenance merges and rewrites within a month, never
-- the whole history: without it, merging made one file per table, each day's delete rewrote it
-- and the maintenance ran out of memory by day 47 (benchmarks/results/lake.md). Partitioning
-- applies to files written from now on; a lake loaded before it is split as its files are
-- rewritten.
ALTER TABLE calls SET PARTITIONED BY (year(attempted_at), month(attempted_at));
ALTER TABLE calls_raw SET PARTITIONED BY (year(attempted_at), month(attempted_at));
ALTER TABLE calls_quarantine SET PARTITIONED BY (year(window_start), month(window_start));
ALTER TABLE call_durations_daily SET PARTITIONED BY (year(day), month(day));
ALTER TABLE answer_rates_daily SET PARTITIONED BY (year(day), month(day));
ALTER TABLE trunk_kpis_daily SET PARTITIONED BY (year(day), month(day));
ALTER TABLE calls_hourly SET PARTITIONED BY (year(day), month(day));
