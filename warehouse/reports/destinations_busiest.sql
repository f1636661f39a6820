-- The day's ten busiest far-end countries (every account, direction and trunk together; no
-- country: NULL): attempts, ASR, talk minutes, ACD and cost. destinations_daily's table in the
-- Dagster UI, and the report's.
SELECT
    d.country,
    sum(d.attempts) AS attempts,
    sum(d.answered) AS answered,
    round(sum(d.answered) / sum(d.attempts), 3) AS asr,
    round(sum(d.talk_seconds) / 60, 1) AS talk_minutes,
    round(sum(d.talk_seconds) / nullif(sum(d.answered), 0), 1) AS acd_s,
    round(sum(d.cost), 4) AS cost
FROM destinations_daily AS d
WHERE d.day = $day
GROUP BY d.country
ORDER BY attempts DESC, d.country NULLS LAST
LIMIT 10;
