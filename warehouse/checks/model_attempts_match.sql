-- The day's attempts in answer_rates_daily equal the calls attempted in the day's window.
-- violations = |model attempts - calls|; sample = both figures.
WITH m AS (SELECT coalesce(sum(attempts), 0) AS attempts FROM answer_rates_daily WHERE day = $day),
     c AS (SELECT count(*) AS calls FROM calls WHERE attempted_at >= $start AND attempted_at < $end)
SELECT abs(m.attempts - c.calls) AS violations,
       ['model attempts ' || m.attempts, 'calls ' || c.calls] AS sample
FROM m, c
