-- wangiri_inbound: the day's inbound calls per calling number (its key), for callers whose
-- country is known and not home; pipelines/fraud.py holds each group to the thresholds.
--   attempts, distinct_called (keys of the called numbers), unanswered, unanswered_share,
--   short_ring (unanswered calls with ring_s <= $max_ring_s; ring_s = terminated_at -
--   attempted_at at millisecond precision), short_ring_share (of the unanswered; 0 when none),
--   busiest_bucket (floor(epoch(attempted_at) / 300); the earliest of equals) and its attempts,
--   callbacks (the day's outbound calls, any account, to the same key).
-- Reads the registered table fraud_numbers(number, key, country).
-- Parameters: $tz, $day, $window_start, $window_end, $home (VARCHAR[]), $max_ring_s.
WITH day_calls AS (
    SELECT c.*
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
),

inbound AS (
    SELECT
        f.key AS number,
        f.country,
        t.key AS called,
        coalesce(d.answered, false) AS answered,
        (epoch_ms(d.terminated_at) - epoch_ms(d.attempted_at)) / 1000.0 AS ring_s,
        CAST(floor(epoch_ms(d.attempted_at) / 300000) AS BIGINT) AS bucket
    FROM day_calls AS d
    JOIN fraud_numbers AS f ON f.number = d.from_number
    LEFT JOIN fraud_numbers AS t ON t.number = d.to_number
    WHERE d.direction = 'inbound'
      AND f.key IS NOT NULL
      AND f.country IS NOT NULL
      AND NOT list_contains($home, f.country)
),

busiest AS (
    SELECT number, bucket, count(*) AS attempts
    FROM inbound
    GROUP BY number, bucket
    QUALIFY row_number() OVER (PARTITION BY number ORDER BY count(*) DESC, bucket) = 1
),

callbacks AS (
    SELECT t.key AS number, count(*) AS callbacks
    FROM day_calls AS d
    JOIN fraud_numbers AS t ON t.number = d.to_number
    WHERE d.direction = 'outbound' AND t.key IS NOT NULL
    GROUP BY ALL
),

groups AS (
    SELECT
        number,
        any_value(country) AS country,
        count(*) AS attempts,
        count(DISTINCT called) AS distinct_called,
        count(*) FILTER (WHERE NOT answered) AS unanswered,
        count(*) FILTER (WHERE NOT answered AND ring_s <= $max_ring_s) AS short_ring
    FROM inbound
    GROUP BY number
)

SELECT
    g.number,
    g.country,
    g.attempts,
    g.distinct_called,
    g.unanswered,
    CAST(g.unanswered AS DOUBLE) / g.attempts AS unanswered_share,
    coalesce(CAST(g.short_ring AS DOUBLE) / nullif(g.unanswered, 0), 0) AS short_ring_share,
    b.bucket AS busiest_bucket,
    strftime(make_timestamp(b.bucket * 300 * 1000000), '%Y-%m-%dT%H:%M:%SZ') AS busiest_bucket_start,
    b.attempts AS busiest_bucket_attempts,
    coalesce(cb.callbacks, 0) AS callbacks
FROM groups AS g
JOIN busiest AS b USING (number)
LEFT JOIN callbacks AS cb USING (number)
ORDER BY g.number;
