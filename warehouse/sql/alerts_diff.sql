-- The batch's alerts that are new (is_new) or differ from the stored row in any column but
-- synced_at: whole rows compared (NULL-safe), so a column added to `alerts` is compared without an
-- edit here. The stored rows are looked up in the batch's alerted_at range, so DuckDB skips
-- row groups by min/max and the cost does not grow with the table.
SELECT b.alert_key, e.alert_key IS NULL AS is_new
FROM (SELECT * EXCLUDE (synced_at) FROM batch) AS b
LEFT JOIN (
    SELECT * EXCLUDE (synced_at) REPLACE (CAST(extra AS VARCHAR) AS extra)
    FROM alerts AS c
    WHERE
        c.alerted_at BETWEEN $lo AND $hi
        AND c.alert_key IN (SELECT k.alert_key FROM batch AS k)
) AS e ON e.alert_key = b.alert_key
WHERE e.alert_key IS NULL OR b IS DISTINCT FROM e;
