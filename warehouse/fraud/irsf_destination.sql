-- irsf_destination: the day's outbound calls per account and destination country (the called
-- number's, fraud_numbers.country; calls to a number of no country are left out), with the
-- account's history; pipelines/fraud.py holds each group to the rules.
--   attempts, answered, answered_seconds (sum of the answered calls' duration), cost (summed as
--   decimals; NULL when no call carries one), distinct_called (keys), top_prefixes (the five
--   commonest first six digits of the called keys without `+`: by count, then prefix),
--   active_days (local days of the 30 before with at least one call of the account, any
--   direction).
-- Reads the registered table fraud_numbers(number, key, country).
-- Parameters: $tz, $day, $window_start, $window_end, $history_start (the UTC start of the local
-- day $history_days (30) days before), $history_days.
WITH outbound AS (
    SELECT
        c.account_sid,
        t.country,
        t.key AS called,
        coalesce(c.answered, false) AS answered,
        c.duration,
        c.cost
    FROM calls AS c
    JOIN fraud_numbers AS t ON t.number = c.to_number
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
      AND c.direction = 'outbound'
      AND t.country IS NOT NULL
),

prefixes AS (
    SELECT account_sid, country, left(ltrim(called, '+'), 6) AS prefix, count(*) AS n
    FROM outbound
    WHERE called IS NOT NULL
    GROUP BY ALL
),

top AS (
    SELECT account_sid, country, list(prefix ORDER BY n DESC, prefix)[1:5] AS top_prefixes
    FROM prefixes
    GROUP BY ALL
),

active AS (
    SELECT c.account_sid, count(DISTINCT CAST(timezone($tz, c.attempted_at) AS DATE)) AS days
    FROM calls AS c
    WHERE c.attempted_at >= $history_start
      AND c.attempted_at < $window_start
      AND CAST(timezone($tz, c.attempted_at) AS DATE) >= $day - $history_days
      AND CAST(timezone($tz, c.attempted_at) AS DATE) < $day
      AND c.account_sid IN (SELECT account_sid FROM outbound)
    GROUP BY ALL
)

SELECT
    o.account_sid,
    o.country,
    count(*) AS attempts,
    count(*) FILTER (WHERE o.answered) AS answered,
    CAST(coalesce(sum(o.duration) FILTER (WHERE o.answered), 0) AS DOUBLE) AS answered_seconds,
    CAST(sum(CAST(o.cost AS DECIMAL(38, 12))) AS DOUBLE) AS cost,
    count(DISTINCT o.called) AS distinct_called,
    coalesce(any_value(t.top_prefixes), []) AS top_prefixes,
    coalesce(any_value(a.days), 0) AS active_days
FROM outbound AS o
LEFT JOIN top AS t
    ON t.account_sid IS NOT DISTINCT FROM o.account_sid AND t.country = o.country
LEFT JOIN active AS a ON a.account_sid IS NOT DISTINCT FROM o.account_sid
GROUP BY o.account_sid, o.country
ORDER BY o.account_sid, o.country;
