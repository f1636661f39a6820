-- The raw payloads of a batch's new and changed rows (WindowLoad._write).
INSERT INTO alerts_raw BY NAME
SELECT n.*
FROM batch AS n;
