-- calls_raw.payload of records read by pipelines/jambonz/columnar.py (the registered view `r`:
-- the server's 21 keys as read, numbers as the integers they were checked to be, and `extra`, the
-- unknown keys as a JSON object or NULL): each record as JSON text, its keys in the server's order,
-- then its unknown keys (`{"a":1}` becomes `,"a":1}` in place of the closing brace).
SELECT CASE
    WHEN r.extra IS NULL THEN r.j
    ELSE left(r.j, length(r.j) - 1) || ',' || substr(r.extra, 2)
END AS payload
FROM (
    SELECT
        to_json(struct_pack(
        "attempted_at" := r."attempted_at",
        "account_sid" := r."account_sid",
        "answered" := r."answered",
        "answered_at" := r."answered_at",
        "application_sid" := r."application_sid",
        "call_sid" := r."call_sid",
        "direction" := r."direction",
        "duration" := r."duration",
        "from" := r."from",
        "host" := r."host",
        "recording_url" := r."recording_url",
        "remote_host" := r."remote_host",
        "service_provider_sid" := r."service_provider_sid",
        "sip_callid" := r."sip_callid",
        "sip_parent_callid" := r."sip_parent_callid",
        "sip_status" := r."sip_status",
        "terminated_at" := r."terminated_at",
        "termination_reason" := r."termination_reason",
        "to" := r."to",
        "trace_id" := r."trace_id",
        "trunk" := r."trunk"
        ))::VARCHAR AS j,
        r.extra
    FROM r
) AS r;
