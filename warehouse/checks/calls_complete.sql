-- Every call the last window load of this connection wrote (_window_keys, kept past its COMMIT:
-- every call the API returned for the window but the quarantined) is in calls, in the window.
SELECT count(*) AS violations, list(f.key ORDER BY f.key)[1:5] AS sample
FROM _window_keys AS f
WHERE NOT EXISTS (
    SELECT 1 FROM calls AS c
    WHERE c.call_key = f.key AND c.attempted_at >= $start AND c.attempted_at < $end
)
