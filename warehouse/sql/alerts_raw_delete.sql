-- The stored payloads of the batch's new and changed alerts (`batch`: alerts_diff's rows), replaced
-- with theirs.
DELETE FROM alerts_raw
WHERE alerted_at BETWEEN $lo AND $hi
  AND alert_key IN (SELECT d.alert_key FROM batch AS d);
