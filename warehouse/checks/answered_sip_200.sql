-- An answered call connected, so its final SIP status is 200.
SELECT count(*) AS violations, list(call_key ORDER BY call_key)[1:5] AS sample
FROM calls
WHERE attempted_at >= $start AND attempted_at < $end
  AND answered AND sip_status IS DISTINCT FROM 200
