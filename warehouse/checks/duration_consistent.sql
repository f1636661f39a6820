-- duration >= 0; 0 for unanswered calls; for answered calls within a second of
-- terminated_at - answered_at (jambonz rounds to whole seconds).
SELECT count(*) AS violations, list(call_key ORDER BY call_key)[1:5] AS sample
FROM calls
WHERE attempted_at >= $start AND attempted_at < $end
  AND (
    duration < 0
    OR (answered_at IS NULL AND duration <> 0)
    OR (answered_at IS NOT NULL AND terminated_at IS NOT NULL
        AND abs(duration - epoch(terminated_at - answered_at)) > 1)
  )
