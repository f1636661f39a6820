SELECT
    count(DISTINCT call_key) FILTER (WHERE is_new) AS inserted,
    count(DISTINCT call_key) FILTER (WHERE NOT is_new) AS updated
FROM _diff;
