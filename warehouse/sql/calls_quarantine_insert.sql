-- Append records not yet quarantined for this window (quarantine_key hashes record + window).
INSERT INTO calls_quarantine BY NAME
SELECT q.*
FROM batch_quarantine AS q
WHERE q.quarantine_key NOT IN (
    SELECT c.quarantine_key
    FROM calls_quarantine AS c
    WHERE c.window_start = $window_start AND c.window_end = $window_end
);
