-- ASR per trunk (accounts and directions pooled) on each day from $first to $last: the chart in
-- trunk_kpis_daily's metadata (the 14 days ending at the partition) and in the HTML report. A
-- day a trunk had no attempts has no row.
SELECT
    k.day,
    coalesce(k.trunk, '(no trunk)') AS trunk,
    sum(k.answered) / sum(k.attempts) AS asr
FROM trunk_kpis_daily AS k
WHERE k.day >= $first AND k.day <= $last
GROUP BY ALL
ORDER BY k.day, trunk;
