-- answer_rates_daily.answer_rate lies in [0, 1] for every row of the day.
SELECT count(*) AS violations,
       list(concat_ws('/', account_sid, direction, trunk) ORDER BY trunk)[1:5] AS sample
FROM answer_rates_daily
WHERE day = $day AND NOT (answer_rate BETWEEN 0 AND 1)
