-- One day of alerts_daily in numbers (the model's Dagster metadata, plotted across partitions):
-- every alert, the calls refused at a call limit (account or service provider) beside the
-- attempts that became call records (the calls attempted in the day's window, counted here: no
-- other model need be rebuilt first), and the webhook failures.
SELECT
    coalesce(sum(a.alerts), 0) AS total_alerts,
    coalesce(sum(a.alerts) FILTER (
        WHERE a.alert_type IN ('account-call-limit', 'service-provider-call-limit')
    ), 0) AS refused_at_call_limit,
    (
        SELECT count(*) FROM calls AS c
        WHERE c.attempted_at >= $window_start AND c.attempted_at < $window_end
    ) AS call_attempts,
    coalesce(sum(a.alerts) FILTER (WHERE a.alert_type LIKE 'webhook-%'), 0) AS webhook_failures
FROM alerts_daily AS a
WHERE a.day = $day;
