-- ASR per trunk (accounts and directions pooled) on each of the 14 days ending at $day: the
-- chart in trunk_kpis_daily's metadata. A day a trunk had no attempts has no row.
SELECT
    k.day,
    coalesce(k.trunk, '(no trunk)') AS trunk,
    sum(k.answered) / sum(k.attempts) AS asr
FROM trunk_kpis_daily AS k
WHERE k.day > $day - 14 AND k.day <= $day
GROUP BY ALL
ORDER BY k.day, trunk;
