-- irsf_destination_history: the distinct numbers one account called (outbound) in the 30 local
-- days before $day, the most recently called first: pipelines/fraud.py reads their countries
-- until it has seen every country it asks about (a regular destination is found at once).
-- Parameters: $tz, $day, $account_sid, $history_start, $history_days (30), $window_start.
SELECT c.to_number AS number
FROM calls AS c
WHERE c.attempted_at >= $history_start
  AND c.attempted_at < $window_start
  AND CAST(timezone($tz, c.attempted_at) AS DATE) >= $day - $history_days
  AND CAST(timezone($tz, c.attempted_at) AS DATE) < $day
  AND c.direction = 'outbound'
  AND c.account_sid IS NOT DISTINCT FROM $account_sid
  AND c.to_number IS NOT NULL
GROUP BY c.to_number
ORDER BY max(c.attempted_at) DESC, c.to_number;
