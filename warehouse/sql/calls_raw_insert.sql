INSERT INTO calls_raw BY NAME
SELECT r.*
FROM batch_raw AS r
WHERE r.call_key IN (SELECT d.call_key FROM _diff AS d);
