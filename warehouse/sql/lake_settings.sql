-- The DuckLake connection's settings (Warehouse._attach_lake): a commit that
-- raced another writer's is retried by DuckLake up to 100 times, from 100 ms apart growing x1.5,
-- instead of 10 times: a busy catalog costs waiting, not a failed run.
SET ducklake_max_retry_count = 100;
SET ducklake_retry_wait_ms = 100;
SET ducklake_retry_backoff = 1.5;
