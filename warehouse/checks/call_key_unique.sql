-- call_key is unique across the whole calls table. No index enforces it (see warehouse/load.py:
-- an index would make loading a day grow with the table), so this check does.
-- Scope: keys of calls attempted in [$start, $end), looked up across every row.
SELECT count(*) AS violations, list(call_key ORDER BY call_key)[1:5] AS sample
FROM (
    SELECT call_key
    FROM calls
    WHERE call_key IN (SELECT call_key FROM calls WHERE attempted_at >= $start AND attempted_at < $end)
    GROUP BY call_key
    HAVING count(*) > 1
)
