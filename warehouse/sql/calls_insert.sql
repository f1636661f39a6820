INSERT INTO calls BY NAME
SELECT b.*
FROM batch_calls AS b
WHERE b.call_key IN (SELECT d.call_key FROM _diff AS d);
