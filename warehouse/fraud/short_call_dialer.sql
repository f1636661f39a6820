-- short_call_dialer: the day's outbound calls per account and calling number (its key);
-- pipelines/fraud.py holds each group to the thresholds.
--   attempts, answered, short_calls (answered, duration < 6 s), short_share (of the answered;
--   NULL when none), acd_s (mean duration of the answered), distinct_called (keys).
-- Reads the registered table fraud_numbers(number, key, country).
-- Parameters: $tz, $day, $window_start, $window_end.
WITH outbound AS (
    SELECT
        c.account_sid,
        f.key AS number,
        t.key AS called,
        coalesce(c.answered, false) AS answered,
        c.duration
    FROM calls AS c
    JOIN fraud_numbers AS f ON f.number = c.from_number
    LEFT JOIN fraud_numbers AS t ON t.number = c.to_number
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
      AND c.direction = 'outbound'
      AND f.key IS NOT NULL
)

SELECT
    account_sid,
    number,
    count(*) AS attempts,
    count(*) FILTER (WHERE answered) AS answered,
    count(*) FILTER (WHERE answered AND duration < 6) AS short_calls,
    CAST(count(*) FILTER (WHERE answered AND duration < 6) AS DOUBLE)
    / nullif(count(*) FILTER (WHERE answered), 0) AS short_share,
    avg(duration) FILTER (WHERE answered) AS acd_s,
    count(DISTINCT called) AS distinct_called
FROM outbound
GROUP BY ALL
ORDER BY account_sid, number;
