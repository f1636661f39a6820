-- fraud_findings: the groups the fraud checks flagged on the day (pipelines/fraud.py), one row
-- per (day, check, group); a day with nothing flagged has no row.
--   check_name   wangiri_inbound, irsf_destination, short_call_dialer or acd_collapse
--   group_key    the group as a person reads it: the calling number (E.164); account/country;
--                account/calling number; trunk/direction
--   figures      the group's key fields and figures as the check's `flagged` metadata holds them
--   complete     whether the day's calls had settled when last synced (as in every model)
--
-- The checks run in Python over the warehouse (their queries: warehouse/fraud/); this reads
-- what they flagged from the table `fraud_flagged(check_name, group_key, figures)` the caller
-- registers for the day.
--
-- Parameters: $complete, $day.
--
-- Example: every number flagged for Wangiri in the last 30 days, worst first
--   SELECT day, group_key AS number, figures ->> 'country' AS country,
--          CAST(figures ->> 'callbacks' AS INTEGER) AS callbacks
--   FROM fraud_findings
--   WHERE check_name = 'wangiri_inbound' AND day >= current_date - 30
--   ORDER BY callbacks DESC, day;
SELECT
    $day AS day,
    f.check_name,
    f.group_key,
    CAST(f.figures AS JSON) AS figures,
    $complete AS complete
FROM fraud_flagged AS f;
