-- Every call the API returned for the window is in calls. The caller registers the relation
-- fetched_keys(call_key) with the keys of the window's normalized records.
SELECT count(*) AS violations, list(f.call_key ORDER BY f.call_key)[1:5] AS sample
FROM fetched_keys AS f
WHERE NOT EXISTS (
    SELECT 1 FROM calls AS c
    WHERE c.call_key = f.call_key AND c.attempted_at >= $start AND c.attempted_at < $end
)
