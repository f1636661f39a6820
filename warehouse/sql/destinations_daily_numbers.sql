-- The far-end numbers of the calls attempted in [window_start, window_end): `to` of outbound
-- calls, `from` of inbound ones (destinations_daily's countries are looked up for these once).
SELECT DISTINCT
    CASE c.direction WHEN 'outbound' THEN c.to_number WHEN 'inbound' THEN c.from_number END
    AS number
FROM calls AS c
WHERE c.attempted_at >= $window_start
  AND c.attempted_at < $window_end
  AND c.direction IN ('outbound', 'inbound')
  AND number IS NOT NULL;
