-- Append records not yet quarantined (quarantine_key hashes the record and its window, so a
-- record met again in the same window is the same key).
INSERT INTO alerts_quarantine BY NAME
SELECT q.*
FROM batch AS q
WHERE q.quarantine_key NOT IN (SELECT c.quarantine_key FROM alerts_quarantine AS c);
