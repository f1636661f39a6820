-- alert_key is unique across the whole alerts table (no index enforces it: see warehouse/load.py).
-- Scope: keys of alerts stamped in [$start, $end), looked up across every row.
SELECT count(*) AS violations, list(alert_key ORDER BY alert_key)[1:5] AS sample
FROM (
    SELECT alert_key
    FROM alerts
    WHERE alert_key IN (SELECT alert_key FROM alerts WHERE alerted_at >= $start AND alerted_at < $end)
    GROUP BY alert_key
    HAVING count(*) > 1
)
