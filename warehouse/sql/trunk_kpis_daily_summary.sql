-- One day of trunk_kpis_daily in three numbers (the model's Dagster metadata, plotted across
-- partitions): total attempts, overall ASR (4 decimals; NULL without attempts), the largest
-- peak_concurrent.
SELECT
    coalesce(sum(k.attempts), 0) AS total_attempts,
    round(sum(k.answered) / nullif(sum(k.attempts), 0), 4) AS overall_asr,
    coalesce(max(k.peak_concurrent), 0) AS peak_concurrent
FROM trunk_kpis_daily AS k
WHERE k.day = $day;
