-- calls_hourly: attempts, talk time and concurrency per local hour.
--
-- One row per (hour, account_sid, direction, trunk) with at least one attempt in that hour.
--   hour             the instant the local hour ($tz) starts: a 25-hour day has two distinct
--                    hours that show the same wall clock, a 23-hour day has 23
--   day              the local day the hour belongs to
--   attempts, answered   of the calls attempted in the hour
--   talk_seconds     duration summed over the answered calls attempted in the hour
--   peak_concurrent  the most calls of the group in progress at one instant of [hour, hour + 1 h),
--                    over [attempted_at, terminated_at), calls carried in from earlier hours and
--                    days included (as trunk_kpis_daily's peak_concurrent, per hour)
--
-- complete: whether the day had settled when its calls were last synced ($complete, from
-- calls_days: false while the intra-day sync fills today, true once the daily run after
-- SYNC_SETTLE_MINUTES has synced it).
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the local day), $day. Reads the
-- day's calls by attempted_at and, through the macros call_spans and call_levels
-- (warehouse/schema/006_call_spans.sql), the calls still running at the day's start.
--
-- Example: the busiest hour of each trunk yesterday
--   SELECT trunk, arg_max(hour, attempts) AS busiest_hour, max(attempts) AS attempts
--   FROM calls_hourly WHERE day = current_date - 1 GROUP BY trunk;
WITH day_calls AS (
    SELECT
        c.account_sid,
        c.direction,
        c.trunk,
        coalesce(c.answered, false) AS answered,
        c.duration,
        c.attempted_at,
        c.terminated_at,
        -- the local hour's start: the instant minus how far into its local hour it lies
        c.attempted_at
        - to_microseconds(epoch_us(timezone($tz, c.attempted_at)) % 3600000000) AS hour
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
),

totals AS (
    SELECT
        hour,
        account_sid,
        direction,
        trunk,
        count(*) AS attempts,
        count(*) FILTER (WHERE answered) AS answered,
        coalesce(sum(duration) FILTER (WHERE answered), 0) AS talk_seconds
    FROM day_calls
    GROUP BY ALL
),

rises AS (
    -- the level after each arrival inside an hour (warehouse/schema/006_call_spans.sql)
    SELECT
        t - to_microseconds(epoch_us(timezone($tz, t)) % 3600000000) AS hour,
        account_sid,
        direction,
        trunk,
        max(level) AS peak
    FROM call_levels($window_start, $window_end)
    WHERE d = 1
    GROUP BY ALL
),

at_start AS (
    -- the calls in progress as each hour with attempts starts
    SELECT t.hour, t.account_sid, t.direction, t.trunk, count(s.s) AS level
    FROM totals AS t
    LEFT JOIN call_spans($window_start, $window_end) AS s
        ON s.account_sid IS NOT DISTINCT FROM t.account_sid
        AND s.direction IS NOT DISTINCT FROM t.direction
        AND s.trunk IS NOT DISTINCT FROM t.trunk
        AND s.s <= t.hour
        AND s.e > t.hour
    GROUP BY ALL
)

SELECT
    t.hour,
    $day AS day,
    t.account_sid,
    t.direction,
    t.trunk,
    t.attempts,
    t.answered,
    t.talk_seconds,
    greatest(a.level, coalesce(r.peak, 0)) AS peak_concurrent,
    $complete AS complete
FROM totals AS t
JOIN at_start AS a
    ON a.hour = t.hour
    AND a.account_sid IS NOT DISTINCT FROM t.account_sid
    AND a.direction IS NOT DISTINCT FROM t.direction
    AND a.trunk IS NOT DISTINCT FROM t.trunk
LEFT JOIN rises AS r
    ON r.hour = t.hour
    AND r.account_sid IS NOT DISTINCT FROM t.account_sid
    AND r.direction IS NOT DISTINCT FROM t.direction
    AND r.trunk IS NOT DISTINCT FROM t.trunk;
