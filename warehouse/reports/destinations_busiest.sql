-- The ten busiest far-end countries of the days $first to $last (every account, direction and
-- trunk together; `(no country)`: a far end that reads as no valid number): attempts, ASR, talk
-- minutes, ACD and cost, the busiest first. destinations_daily's table in the Dagster UI (a day:
-- $first = $last = the day), and the report's; both draw their chart from it.
SELECT
    coalesce(d.country, '(no country)') AS country,
    sum(d.attempts) AS attempts,
    sum(d.answered) AS answered,
    round(sum(d.answered) / sum(d.attempts), 3) AS asr,
    round(sum(d.talk_seconds) / 60, 1) AS talk_minutes,
    round(sum(d.talk_seconds) / nullif(sum(d.answered), 0), 1) AS acd_s,
    round(sum(d.cost), 4) AS cost
FROM destinations_daily AS d
WHERE d.day >= $first AND d.day <= $last
GROUP BY d.country
ORDER BY attempts DESC, d.country NULLS LAST
LIMIT 10;
