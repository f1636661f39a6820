-- The hours of the days $first to $last in order: the local day and wall clock ($tz; two rows may
-- show the same one on a 25-hour day), attempts of all groups, and the largest peak_concurrent
-- of a group: the chart in calls_hourly's metadata (one day) and in the HTML report (a range).
SELECT
    h.hour,
    h.day,
    strftime(timezone($tz, h.hour), '%H:%M') AS wall_clock,
    sum(h.attempts) AS attempts,
    max(h.peak_concurrent) AS peak_concurrent
FROM calls_hourly AS h
WHERE h.day >= $first AND h.day <= $last
GROUP BY h.hour, h.day
ORDER BY h.hour;
