-- Every alert the last window load of this connection wrote (_window_keys, kept past its COMMIT:
-- every alert the API returned for the window but the quarantined) is in alerts, in the window.
SELECT count(*) AS violations, list(f.key ORDER BY f.key)[1:5] AS sample
FROM _window_keys AS f
WHERE NOT EXISTS (
    SELECT 1 FROM alerts AS a
    WHERE a.alert_key = f.key AND a.alerted_at >= $start AND a.alerted_at < $end
)
