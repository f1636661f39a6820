-- answer_rates_daily: how many attempts were answered, and how the others failed, per day,
-- account, direction and trunk.
--
-- One row per (day, account_sid, direction, trunk) with at least one attempt.
--   day              date of attempted_at in the configured timezone ($tz, default 'UTC')
--   account_sid, direction, trunk   as in `calls` (NULL trunk is its own group)
--   attempts         every call, including inbound ones that failed before an application ran
--                    (NULL call_sid, keyed 'nosid:...'): leaving them out inflates answer_rate
--   answered         calls with answered = true
--   answer_rate      answered / attempts (DOUBLE, 0..1)
--   failures_4xx, failures_5xx, failures_6xx
--                    unanswered calls by the class of their final sip_status
--   top_termination_reason
--                    the most frequent termination_reason of the group (all calls, NULLs
--                    ignored); ties broken alphabetically (byte order), NULL when none
--
-- complete: whether the day had settled when its calls were last synced ($complete, from
-- calls_days: false while the intra-day sync fills today, true once the daily run after
-- SYNC_SETTLE_MINUTES has synced it).
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the day in $tz: the rebuild
-- reads only that range), $day. Rebuilt a day at a time by Warehouse.rebuild_model.
--
-- Example: the answer rate of each trunk yesterday, worst first
--   SELECT trunk, sum(answered) / sum(attempts) AS answer_rate, sum(failures_5xx) AS carrier_5xx
--   FROM answer_rates_daily
--   WHERE day = current_date - 1
--   GROUP BY trunk ORDER BY answer_rate;
WITH day_calls AS (
    SELECT
        CAST(timezone($tz, c.attempted_at) AS DATE) AS day,
        c.account_sid,
        c.direction,
        c.trunk,
        coalesce(c.answered, false) AS answered,
        c.sip_status,
        c.termination_reason
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
),

reasons AS (
    SELECT day, account_sid, direction, trunk, termination_reason, count(*) AS n
    FROM day_calls
    WHERE termination_reason IS NOT NULL
    GROUP BY ALL
),

top_reasons AS (
    SELECT
        day,
        account_sid,
        direction,
        trunk,
        first(termination_reason ORDER BY n DESC, termination_reason ASC) AS top_termination_reason
    FROM reasons
    GROUP BY ALL
),

totals AS (
    SELECT
        day,
        account_sid,
        direction,
        trunk,
        count(*) AS attempts,
        count(*) FILTER (WHERE answered) AS answered,
        count(*) FILTER (WHERE NOT answered AND sip_status BETWEEN 400 AND 499) AS failures_4xx,
        count(*) FILTER (WHERE NOT answered AND sip_status BETWEEN 500 AND 599) AS failures_5xx,
        count(*) FILTER (WHERE NOT answered AND sip_status BETWEEN 600 AND 699) AS failures_6xx
    FROM day_calls
    GROUP BY ALL
)

SELECT
    t.day,
    t.account_sid,
    t.direction,
    t.trunk,
    t.attempts,
    t.answered,
    CAST(t.answered AS DOUBLE) / t.attempts AS answer_rate,
    t.failures_4xx,
    t.failures_5xx,
    t.failures_6xx,
    r.top_termination_reason,
    $complete AS complete
FROM totals AS t
LEFT JOIN top_reasons AS r
    ON t.day = r.day
    AND t.account_sid IS NOT DISTINCT FROM r.account_sid
    AND t.direction IS NOT DISTINCT FROM r.direction
    AND t.trunk IS NOT DISTINCT FROM r.trunk
