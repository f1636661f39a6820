-- The batch's calls that are new (is_new) or differ from the stored row in any column but
-- synced_at: whole rows compared (NULL-safe), so a column added to `calls` is compared without an
-- edit here. The stored rows are looked up in the batch's attempted_at range, so DuckDB skips
-- row groups by min/max and the cost does not grow with the table.
SELECT b.call_key, e.call_key IS NULL AS is_new
FROM (SELECT * EXCLUDE (synced_at) FROM batch) AS b
LEFT JOIN (
    SELECT * EXCLUDE (synced_at) REPLACE (CAST(extra AS VARCHAR) AS extra)
    FROM calls AS c
    WHERE
        c.attempted_at BETWEEN $lo AND $hi
        AND c.call_key IN (SELECT k.call_key FROM batch AS k)
) AS e ON e.call_key = b.call_key
WHERE e.call_key IS NULL OR b IS DISTINCT FROM e;
