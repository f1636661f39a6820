-- attempted_at <= answered_at <= terminated_at wherever those are present.
SELECT count(*) AS violations, list(call_key ORDER BY call_key)[1:5] AS sample
FROM calls
WHERE attempted_at >= $start AND attempted_at < $end
  AND (answered_at < attempted_at OR terminated_at < answered_at OR terminated_at < attempted_at)
