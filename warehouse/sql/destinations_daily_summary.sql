-- One day of destinations_daily in numbers (the model's Dagster metadata, plotted across
-- partitions): countries reached, attempts with no country, the day's cost.
SELECT
    count(DISTINCT d.country) AS countries,
    coalesce(sum(d.attempts) FILTER (WHERE d.country IS NULL), 0) AS attempts_without_country,
    sum(d.cost) AS cost
FROM destinations_daily AS d
WHERE d.day = $day;
