-- The HTML report's overview: trunk_kpis_daily over the days $first to $last, per trunk and
-- direction (accounts pooled), then one row of all trunks and directions (trunk and direction
-- NULL: the report labels it). Counts are summed and the ratios recomputed from the sums (asr,
-- acd_s, short_call_ratio); the peaks are the largest day's, and NULL on the totals row: the
-- groups' peaks neither add up nor bound the peak of all calls at once. SER, SEER, ISA and the
-- answer-delay quantiles do not pool from daily rows: the report shows them per day.
SELECT
    coalesce(k.trunk, '(no trunk)') AS trunk,
    k.direction,
    count(DISTINCT k.day) AS days,
    sum(k.attempts) AS attempts,
    sum(k.answered) AS answered,
    sum(k.answered) / sum(k.attempts) AS asr,
    sum(k.busy) AS busy,
    sum(k.no_answer) AS no_answer,
    sum(k.rejected) AS rejected,
    sum(k.abandoned) AS abandoned,
    sum(k.network_failures) AS network_failures,
    sum(k.other_failures) AS other_failures,
    sum(k.talk_seconds) AS talk_seconds,
    sum(k.talk_seconds) / nullif(sum(k.answered), 0) AS acd_s,
    sum(k.short_calls) / nullif(sum(k.answered), 0) AS short_call_ratio,
    CASE WHEN grouping(k.direction) = 0 THEN max(k.peak_concurrent) END AS peak_concurrent,
    CASE WHEN grouping(k.direction) = 0 THEN max(k.peak_cps) END AS peak_cps
FROM trunk_kpis_daily AS k
WHERE k.day >= $first AND k.day <= $last
GROUP BY GROUPING SETS ((coalesce(k.trunk, '(no trunk)'), k.direction), ())
ORDER BY grouping(k.direction), trunk, k.direction;
