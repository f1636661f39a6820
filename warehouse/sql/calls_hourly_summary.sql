-- One day of calls_hourly in numbers (the model's Dagster metadata, plotted across partitions):
-- total attempts, the largest peak_concurrent of an hour, the attempts of the busiest hour.
SELECT
    coalesce(sum(h.attempts), 0) AS total_attempts,
    coalesce(max(h.peak_concurrent), 0) AS peak_concurrent,
    coalesce(max(h.attempts), 0) AS busiest_hour_attempts
FROM calls_hourly AS h
WHERE h.day = $day;
