-- The stored rows of the batch's calls. The attempted_at range lets DuckDB skip row groups by
-- min/max, so the cost does not grow with the table.
CREATE OR REPLACE TEMP TABLE _existing AS
SELECT c.*
FROM calls AS c
WHERE c.attempted_at BETWEEN $lo AND $hi
  AND c.call_key IN (SELECT b.call_key FROM batch AS b);
