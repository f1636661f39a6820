-- The HTML report's table per trunk: every trunk_kpis_daily row of the days $first to $last, as
-- the model has it (one per day, account and direction), ordered by trunk, then day.
SELECT
    coalesce(k.trunk, '(no trunk)') AS trunk,
    k.day,
    k.direction,
    k.account_sid,
    k.attempts,
    k.answered,
    k.asr,
    k.ser,
    k.seer,
    k.isa,
    k.busy,
    k.no_answer,
    k.rejected,
    k.abandoned,
    k.network_failures,
    k.other_failures,
    k.acd_s,
    k.short_call_ratio,
    k.answer_delay_p50_s,
    k.answer_delay_p90_s,
    k.peak_concurrent,
    k.peak_cps
FROM trunk_kpis_daily AS k
WHERE k.day >= $first AND k.day <= $last
ORDER BY trunk, k.day, k.direction, k.account_sid;
