-- The hours of $day in order: the local wall clock ($tz, two rows may show the same one on a
-- 25-hour day), attempts of all groups, and the largest peak_concurrent of a group: the chart
-- in calls_hourly's metadata.
SELECT
    h.hour,
    strftime(timezone($tz, h.hour), '%H:%M') AS wall_clock,
    sum(h.attempts) AS attempts,
    max(h.peak_concurrent) AS peak_concurrent
FROM calls_hourly AS h
WHERE h.day = $day
GROUP BY h.hour
ORDER BY h.hour;
