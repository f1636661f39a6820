-- The local days ($tz) from $first to $last without trunk_kpis_daily rows, so the HTML report
-- names them instead of showing a silent gap: `calls`, the calls the warehouse holds of the day
-- (some: the models were not materialized for it; none: nothing to model), and `synced`, whether
-- a sync of the day is recorded (calls_days): a day never synced wants a backfill.
WITH days AS (
    SELECT CAST(t.d AS DATE) AS day
    FROM generate_series(CAST($first AS TIMESTAMP), CAST($last AS TIMESTAMP), INTERVAL 1 DAY)
        AS t (d)
),

call_days AS (
    SELECT
        CAST(timezone($tz, c.attempted_at) AS DATE) AS day,
        count(*) AS calls
    FROM calls AS c
    WHERE
        c.attempted_at >= timezone($tz, CAST($first AS TIMESTAMP))
        AND c.attempted_at < timezone($tz, CAST($last + 1 AS TIMESTAMP))
    GROUP BY ALL
)

SELECT
    d.day,
    coalesce(c.calls, 0) AS calls,
    EXISTS (SELECT 1 FROM calls_days AS s WHERE s.day = d.day) AS synced
FROM days AS d
LEFT JOIN call_days AS c ON c.day = d.day
WHERE NOT EXISTS (SELECT 1 FROM trunk_kpis_daily AS k WHERE k.day = d.day)
ORDER BY d.day;
