-- Answer rate and median talk time per trunk over calls attempted in [$start, $end).
-- answer_rate = answered / attempts; median_duration_s = quantile_cont(duration, 0.5) over
-- answered calls (NULL when none answered).
SELECT
    trunk,
    count(*) AS attempts,
    count(*) FILTER (WHERE answered) AS answered,
    round(count(*) FILTER (WHERE answered) / count(*), 3) AS answer_rate,
    quantile_cont(duration, 0.5) FILTER (WHERE answered) AS median_duration_s
FROM calls
WHERE attempted_at >= $start AND attempted_at < $end
GROUP BY trunk
ORDER BY trunk
