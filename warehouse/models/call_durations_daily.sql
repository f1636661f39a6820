-- call_durations_daily: how long answered calls lasted, per day, account, direction and trunk.
--
-- One row per (day, account_sid, direction, trunk) with at least one answered call.
--   day              date of attempted_at in the configured timezone ($tz, default 'UTC')
--   account_sid, direction, trunk   as in `calls` (NULL trunk is its own group)
--   answered_calls   number of answered calls (answered = true)
--   talk_seconds     sum of their duration (whole seconds)
--   mean_duration    average duration
--   median_duration, p90_duration, p99_duration
--                    quantile_cont (linear interpolation between the two nearest ranks:
--                    position q * (n - 1) in the sorted durations), as DOUBLE
--   max_duration     longest duration
-- Unanswered calls are not counted here (see answer_rates_daily).
--
-- complete: whether the day had settled when its calls were last synced ($complete, from
-- calls_days: false while the intra-day sync fills today, true once the daily run after
-- SYNC_SETTLE_MINUTES has synced it).
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the day in $tz: the rebuild
-- reads only that range), $day. Rebuilt a day at a time by Warehouse.rebuild_model, which
-- deletes the day's rows and inserts this query's result in one transaction.
--
-- Example: the slowest trunks of last week
--   SELECT trunk, sum(answered_calls) AS calls, max(p99_duration) AS worst_p99
--   FROM call_durations_daily
--   WHERE day >= current_date - 7
--   GROUP BY trunk ORDER BY worst_p99 DESC;
SELECT
    CAST(timezone($tz, c.attempted_at) AS DATE) AS day,
    c.account_sid,
    c.direction,
    c.trunk,
    count(*) AS answered_calls,
    sum(c.duration) AS talk_seconds,
    avg(c.duration) AS mean_duration,
    quantile_cont(CAST(c.duration AS DOUBLE), 0.5) AS median_duration,
    quantile_cont(CAST(c.duration AS DOUBLE), 0.9) AS p90_duration,
    quantile_cont(CAST(c.duration AS DOUBLE), 0.99) AS p99_duration,
    max(c.duration) AS max_duration,
    $complete AS complete
FROM calls AS c
WHERE c.attempted_at >= $window_start
  AND c.attempted_at < $window_end
  AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
  AND c.answered
GROUP BY ALL
