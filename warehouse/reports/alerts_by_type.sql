-- The day's alerts per type (every account together; service-provider alerts included), most
-- frequent first: alerts_daily's table in the Dagster UI.
SELECT a.alert_type, sum(a.alerts) AS alerts, count(DISTINCT a.account_sid) AS accounts
FROM alerts_daily AS a
WHERE a.day = $day
GROUP BY a.alert_type
ORDER BY alerts DESC, a.alert_type;
