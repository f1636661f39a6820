-- Batch keys that are new (is_new) or differ from the stored row in any column but synced_at.
CREATE OR REPLACE TEMP TABLE _diff AS
SELECT b.call_key, e.call_key IS NULL AS is_new
FROM batch_calls AS b
LEFT JOIN _existing AS e ON e.call_key = b.call_key
WHERE e.call_key IS NULL
   OR b.call_sid IS DISTINCT FROM e.call_sid
   OR b.account_sid IS DISTINCT FROM e.account_sid
   OR b.service_provider_sid IS DISTINCT FROM e.service_provider_sid
   OR b.application_sid IS DISTINCT FROM e.application_sid
   OR b.direction IS DISTINCT FROM e.direction
   OR b.from_number IS DISTINCT FROM e.from_number
   OR b.to_number IS DISTINCT FROM e.to_number
   OR b.answered IS DISTINCT FROM e.answered
   OR b.sip_status IS DISTINCT FROM e.sip_status
   OR b.duration IS DISTINCT FROM e.duration
   OR b.attempted_at IS DISTINCT FROM e.attempted_at
   OR b.answered_at IS DISTINCT FROM e.answered_at
   OR b.terminated_at IS DISTINCT FROM e.terminated_at
   OR b.termination_reason IS DISTINCT FROM e.termination_reason
   OR b.host IS DISTINCT FROM e.host
   OR b.remote_host IS DISTINCT FROM e.remote_host
   OR b.trunk IS DISTINCT FROM e.trunk
   OR b.sip_callid IS DISTINCT FROM e.sip_callid
   OR b.sip_parent_callid IS DISTINCT FROM e.sip_parent_callid
   OR b.trace_id IS DISTINCT FROM e.trace_id
   OR b.recording_url IS DISTINCT FROM e.recording_url
   OR b.extra IS DISTINCT FROM CAST(e.extra AS VARCHAR);
