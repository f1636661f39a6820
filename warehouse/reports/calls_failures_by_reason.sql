-- The HTML report's failures by termination reason: the unanswered calls attempted in the local
-- days ($tz) $first to $last, per termination_reason as jambonz wrote it ('(none)' when it wrote
-- none), with their share of all unanswered calls; the commonest first.
SELECT
    coalesce(c.termination_reason, '(none)') AS termination_reason,
    count(*) AS unanswered,
    count(*) / sum(count(*)) OVER () AS share
FROM calls AS c
WHERE
    c.attempted_at >= timezone($tz, CAST($first AS TIMESTAMP))
    AND c.attempted_at < timezone($tz, CAST($last + 1 AS TIMESTAMP))
    AND NOT coalesce(c.answered, false)
GROUP BY ALL
ORDER BY unanswered DESC, termination_reason;
