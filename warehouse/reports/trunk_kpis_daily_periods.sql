-- The HTML report's comparison: trunk_kpis_daily pooled over all trunks, directions and accounts
-- in the days $first to $last ('this') and in the previous period of the same length,
-- $previous_first to $previous_last ('previous'). A period without rows has days = 0 and NULL
-- figures: the report says "no data", not zero.
SELECT
    p.period,
    count(DISTINCT k.day) AS days,
    sum(k.attempts) AS attempts,
    sum(k.answered) AS answered,
    sum(k.answered) / sum(k.attempts) AS asr,
    sum(k.talk_seconds) / nullif(sum(k.answered), 0) AS acd_s,
    sum(k.talk_seconds) / 60 AS talk_minutes
FROM (
    VALUES
    ('this', CAST($first AS DATE), CAST($last AS DATE)),
    ('previous', CAST($previous_first AS DATE), CAST($previous_last AS DATE))
) AS p (period, first_day, last_day)
LEFT JOIN trunk_kpis_daily AS k ON k.day >= p.first_day AND k.day <= p.last_day
GROUP BY p.period
ORDER BY p.period = 'previous';
