-- The calls refused at the call limit beside the calls attempted, per local day from $first to
-- $last that has trunk_kpis_daily or alerts_daily rows: the report's and the demo's table.
--   attempts, answered, answer_rate  trunk_kpis_daily's, every trunk, direction and account
--                                    (NULL: the day's calls not modeled)
--   refused_at_call_limit            alerts of type account-call-limit or
--                                    service-provider-call-limit: calls jambonz refused at the
--                                    account's or the service provider's limit, which never
--                                    became call records (alerts_daily_summary's count)
--   refused_share                    refused / (attempts + refused): of the calls offered
--   alerts                           every alert of the day, of any type
-- The alert figures are NULL when no day of the range has an alerts_daily row: no alerts synced
-- (a warehouse synced before they were), not none refused.
WITH day_calls AS (
    SELECT k.day, sum(k.attempts) AS attempts, sum(k.answered) AS answered
    FROM trunk_kpis_daily AS k
    WHERE k.day >= $first AND k.day <= $last
    GROUP BY k.day
),

day_alerts AS (
    SELECT
        a.day,
        sum(a.alerts) FILTER (
            WHERE a.alert_type IN ('account-call-limit', 'service-provider-call-limit')
        ) AS refused,
        sum(a.alerts) AS alerts
    FROM alerts_daily AS a
    WHERE a.day >= $first AND a.day <= $last
    GROUP BY a.day
),

synced AS (SELECT count(*) > 0 AS any_alerts FROM day_alerts)

SELECT
    coalesce(c.day, a.day) AS day,
    c.attempts,
    c.answered,
    round(c.answered / c.attempts, 3) AS answer_rate,
    CASE WHEN s.any_alerts THEN coalesce(a.refused, 0) END AS refused_at_call_limit,
    round(
        CASE WHEN s.any_alerts THEN coalesce(a.refused, 0) END
        / nullif(coalesce(c.attempts, 0) + coalesce(a.refused, 0), 0),
        4
    ) AS refused_share,
    CASE WHEN s.any_alerts THEN coalesce(a.alerts, 0) END AS alerts
FROM day_calls AS c
FULL OUTER JOIN day_alerts AS a ON a.day = c.day
CROSS JOIN synced AS s
ORDER BY day;
