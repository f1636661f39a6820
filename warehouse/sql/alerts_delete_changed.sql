-- The stored rows of the batch's changed alerts (`batch`: their keys, alerts_diff's rows that are
-- not new), deleted before their new rows are inserted.
DELETE FROM alerts
WHERE alerted_at BETWEEN $lo AND $hi
  AND alert_key IN (SELECT d.alert_key FROM batch AS d);
