-- alerts_daily: the day's jambonz alerts per account and type.
--
-- One row per (day, account_sid, alert_type) with at least one alert in the day.
--   day          local date in $tz of alerted_at (the call models' day boundaries)
--   account_sid  NULL for service-provider alerts (sent as "undefined")
--   alert_type   as sent: account-call-limit and service-provider-call-limit are calls refused
--                at the call limit (they never became call records), webhook-failure,
--                tts-failure, ...
--   alerts       how many
--   complete     whether the day's calls had settled when last synced (as in every model)
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the local day), $day.
--
-- Example: calls refused at the call limit per day and account, last 30 days
--   SELECT day, account_sid, sum(alerts) AS refused FROM alerts_daily
--   WHERE alert_type IN ('account-call-limit', 'service-provider-call-limit')
--     AND day >= current_date - 30
--   GROUP BY ALL ORDER BY day, account_sid;
SELECT
    $day AS day,
    a.account_sid,
    a.alert_type,
    count(*) AS alerts,
    $complete AS complete
FROM alerts AS a
WHERE a.alerted_at >= $window_start
  AND a.alerted_at < $window_end
  AND CAST(timezone($tz, a.alerted_at) AS DATE) = $day
GROUP BY ALL;
