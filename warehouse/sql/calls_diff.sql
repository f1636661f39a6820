-- Batch keys that are new (is_new) or differ from the stored row in any column but synced_at:
-- whole rows compared (NULL-safe), so a column added to `calls` is compared without an edit here.
CREATE OR REPLACE TEMP TABLE _diff AS
SELECT b.call_key, e.call_key IS NULL AS is_new
FROM (SELECT * EXCLUDE (synced_at) FROM batch) AS b
LEFT JOIN (
    SELECT * EXCLUDE (synced_at) REPLACE (CAST(extra AS VARCHAR) AS extra) FROM _existing
) AS e ON e.call_key = b.call_key
WHERE e.call_key IS NULL OR b IS DISTINCT FROM e;
