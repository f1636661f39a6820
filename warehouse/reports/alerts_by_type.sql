-- The alerts of the days $first to $last per type (every account together; service-provider
-- alerts included), most frequent first, and how many accounts had them (a service provider's
-- own alerts have none). alerts_daily's table in the Dagster UI (a day: $first = $last = the
-- day), and the report's, one day at a time and over its days.
SELECT a.alert_type, sum(a.alerts) AS alerts, count(DISTINCT a.account_sid) AS accounts
FROM alerts_daily AS a
WHERE a.day >= $first AND a.day <= $last
GROUP BY a.alert_type
ORDER BY alerts DESC, a.alert_type;
