-- destinations_daily: the day's calls by where they went (or came from): the far end's country.
--
-- One row per (day, account_sid, direction, trunk, country) with at least one attempt.
--   country      ISO 3166-1 alpha-2 of the far end's number by libphonenumber (`001`: a
--                non-geographic number, +800, +882, ...); NULL when it reads as no valid number
--                (a SIP user name, an empty string). The far end is `to_number` for outbound
--                calls and `from_number` for inbound ones; its country comes from the table
--                `far_end_countries(number, country)` the caller registers for the day
--                (pipelines/numbers.py: E.164, national numbers of NUMBERS_DEFAULT_REGION, URIs).
--   attempts, answered, asr, talk_seconds, acd_s, short_calls
--                as in trunk_kpis_daily (short: answered and duration < 6 s)
--   cost         sum of the calls' cost; NULL when no call of the group carries one
--   complete     whether the day's calls had settled when last synced (as in every model)
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the local day), $day.
--
-- Example: ASR and minutes by destination country this week
--   SELECT country, sum(attempts) AS attempts, sum(answered) / sum(attempts) AS asr,
--          sum(talk_seconds) / 60 AS minutes
--   FROM destinations_daily
--   WHERE direction = 'outbound' AND day >= current_date - 6
--   GROUP BY country ORDER BY attempts DESC;
WITH day_calls AS (
    SELECT
        c.account_sid,
        c.direction,
        c.trunk,
        coalesce(c.answered, false) AS answered,
        c.duration,
        c.cost,
        CASE c.direction
            WHEN 'outbound' THEN c.to_number
            WHEN 'inbound' THEN c.from_number
        END AS far_end
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
)

SELECT
    $day AS day,
    d.account_sid,
    d.direction,
    d.trunk,
    n.country,
    count(*) AS attempts,
    count(*) FILTER (WHERE d.answered) AS answered,
    CAST(count(*) FILTER (WHERE d.answered) AS DOUBLE) / count(*) AS asr,
    coalesce(sum(d.duration) FILTER (WHERE d.answered), 0) AS talk_seconds,
    avg(d.duration) FILTER (WHERE d.answered) AS acd_s,
    count(*) FILTER (WHERE d.answered AND d.duration < 6) AS short_calls,
    -- summed as decimals: the same total whatever order the rows come in (a lake's may vary)
    CAST(sum(CAST(d.cost AS DECIMAL(38, 12))) AS DOUBLE) AS cost,
    $complete AS complete
FROM day_calls AS d
LEFT JOIN far_end_countries AS n ON n.number = d.far_end
GROUP BY ALL;
