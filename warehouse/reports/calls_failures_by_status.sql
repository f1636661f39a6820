-- The HTML report's failures by SIP status class: the unanswered calls attempted in the local
-- days ($tz) $first to $last, per class of their final sip_status ('4xx', '5xx', '6xx', '3xx';
-- 'none' when jambonz sent no status), the class's share of all unanswered calls, and its five
-- commonest statuses with their counts.
WITH failed AS (
    SELECT c.sip_status
    FROM calls AS c
    WHERE
        c.attempted_at >= timezone($tz, CAST($first AS TIMESTAMP))
        AND c.attempted_at < timezone($tz, CAST($last + 1 AS TIMESTAMP))
        AND NOT coalesce(c.answered, false)
),

statuses AS (
    SELECT
        coalesce(CAST(f.sip_status // 100 AS VARCHAR) || 'xx', 'none') AS status_class,
        f.sip_status,
        count(*) AS calls
    FROM failed AS f
    GROUP BY ALL
)

SELECT
    s.status_class,
    sum(s.calls) AS unanswered,
    sum(s.calls) / (SELECT count(*) FROM failed) AS share,
    array_to_string(
        list(
            coalesce(CAST(s.sip_status AS VARCHAR), 'none') || ': ' || format('{:,}', s.calls)
            ORDER BY s.calls DESC, s.sip_status
        )[1:5],
        ', '
    ) AS top_statuses
FROM statuses AS s
GROUP BY s.status_class
ORDER BY s.status_class;
