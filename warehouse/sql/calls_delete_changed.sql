-- The stored rows of the batch's changed calls (`batch`: their keys, calls_diff's rows that are
-- not new), deleted before their new rows are inserted.
DELETE FROM calls
WHERE attempted_at BETWEEN $lo AND $hi
  AND call_key IN (SELECT d.call_key FROM batch AS d);
