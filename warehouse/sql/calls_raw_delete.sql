DELETE FROM calls_raw
WHERE attempted_at BETWEEN $lo AND $hi
  AND call_key IN (SELECT d.call_key FROM _diff AS d);
