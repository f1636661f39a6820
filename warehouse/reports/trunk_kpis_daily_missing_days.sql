-- Local days ($tz) from $first to $last that hold calls but no trunk_kpis_daily rows: the model
-- was not materialized for them, so the HTML report says so instead of showing a silent gap.
WITH call_days AS (
    SELECT
        CAST(timezone($tz, c.attempted_at) AS DATE) AS day,
        count(*) AS calls
    FROM calls AS c
    WHERE
        c.attempted_at >= timezone($tz, CAST($first AS TIMESTAMP))
        AND c.attempted_at < timezone($tz, CAST($last + 1 AS TIMESTAMP))
    GROUP BY ALL
)
SELECT d.day, d.calls
FROM call_days AS d
WHERE NOT EXISTS (SELECT 1 FROM trunk_kpis_daily AS k WHERE k.day = d.day)
ORDER BY d.day;
