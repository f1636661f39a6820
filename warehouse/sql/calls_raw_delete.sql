-- The stored payloads of the batch's new and changed calls (`batch`: calls_diff's rows), replaced
-- with theirs.
DELETE FROM calls_raw
WHERE attempted_at BETWEEN $lo AND $hi
  AND call_key IN (SELECT d.call_key FROM batch AS d);
