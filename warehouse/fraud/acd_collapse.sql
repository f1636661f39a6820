-- acd_collapse: per trunk and direction, every account together, the day's answered calls, ACD
-- and short-call share beside the baseline of the 30 local days before: the median ACD and the
-- median short-call share over those days with at least $min_answered answered calls
-- (baseline_days of them; the median of an even count is the mean of the middle two).
-- pipelines/fraud.py holds each group to the thresholds.
-- Parameters: $tz, $day, $window_end, $history_start, $history_days (30: H), $min_answered.
WITH per_day AS (
    SELECT
        CAST(timezone($tz, c.attempted_at) AS DATE) AS day,
        c.trunk,
        c.direction,
        count(*) AS attempts,
        count(*) FILTER (WHERE c.answered) AS answered,
        avg(c.duration) FILTER (WHERE c.answered) AS acd_s,
        CAST(count(*) FILTER (WHERE c.answered AND c.duration < 6) AS DOUBLE)
        / nullif(count(*) FILTER (WHERE c.answered), 0) AS short_share
    FROM calls AS c
    WHERE c.attempted_at >= $history_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) BETWEEN $day - $history_days AND $day
    GROUP BY ALL
),

baseline AS (
    SELECT
        trunk,
        direction,
        count(*) AS baseline_days,
        median(acd_s) AS baseline_acd_s,
        median(short_share) AS baseline_short_share
    FROM per_day
    WHERE day < $day AND answered >= $min_answered
    GROUP BY ALL
)

SELECT
    d.trunk,
    d.direction,
    d.answered,
    d.acd_s,
    d.short_share,
    b.baseline_acd_s,
    b.baseline_short_share,
    coalesce(b.baseline_days, 0) AS baseline_days
FROM per_day AS d
LEFT JOIN baseline AS b
    ON b.trunk IS NOT DISTINCT FROM d.trunk AND b.direction IS NOT DISTINCT FROM d.direction
WHERE d.day = $day
ORDER BY d.trunk NULLS LAST, d.direction;
