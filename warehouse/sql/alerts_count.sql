-- Alerts stamped in [window_start, window_end), optionally of one account.
SELECT count(*)
FROM alerts
WHERE alerted_at >= $window_start
  AND alerted_at < $window_end
  AND ($account_sid IS NULL OR account_sid = $account_sid);
