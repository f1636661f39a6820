-- Calls attempted in [window_start, window_end), optionally of one account.
SELECT count(*)
FROM calls
WHERE attempted_at >= $window_start
  AND attempted_at < $window_end
  AND ($account_sid IS NULL OR account_sid = $account_sid);
