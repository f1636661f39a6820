-- asr_drop (WARN, not blocking): the (account_sid, direction, trunk) groups of trunk_kpis_daily
-- whose answer rate collapsed on $day. A group is flagged when all of these hold:
--   the day has at least 50 attempts, and the 7 days before it together at least 200;
--   the day's ASR is at least 10 percentage points below those 7 days' (pooled) ASR;
--   a pooled two-proportion z-test gives z <= -3.
-- A day with few calls is never flagged, however low its ASR. The sample names every flagged
-- group with both ASRs and both attempt counts; when nothing is flagged it says why (too little
-- history, or how many groups were compared); `flagged` lists them as objects (pipelines/notify.py).
WITH today AS (
    SELECT account_sid, direction, trunk, attempts, answered
    FROM trunk_kpis_daily
    WHERE day = $day
),

history AS (
    SELECT account_sid, direction, trunk, sum(attempts) AS attempts, sum(answered) AS answered
    FROM trunk_kpis_daily
    WHERE day >= $day - 7 AND day < $day
    GROUP BY ALL
),

compared AS (
    SELECT
        concat_ws('/', t.account_sid, t.direction, coalesce(t.trunk, '(no trunk)')) AS grp,
        t.account_sid,
        t.direction,
        t.trunk,
        t.attempts,
        h.attempts AS before_attempts,
        t.answered / t.attempts AS asr,
        h.answered / h.attempts AS before_asr,
        (t.answered + h.answered) / (t.attempts + h.attempts) AS pooled
    FROM today AS t
    JOIN history AS h
        ON h.account_sid IS NOT DISTINCT FROM t.account_sid
        AND h.direction IS NOT DISTINCT FROM t.direction
        AND h.trunk IS NOT DISTINCT FROM t.trunk
    WHERE t.attempts >= 50 AND h.attempts >= 200
),

scored AS (
    SELECT
        *,
        (asr - before_asr)
        / nullif(sqrt(pooled * (1 - pooled) * (1.0 / attempts + 1.0 / before_attempts)), 0) AS z
    FROM compared
),

flagged AS (
    SELECT *
    FROM scored
    WHERE asr <= before_asr - 0.10 AND z <= -3
)

SELECT
    (SELECT count(*) FROM flagged) AS violations,
    CASE
        WHEN (SELECT count(*) FROM flagged) > 0 THEN (
            SELECT list(
                grp || printf(
                    ': ASR %.3f of %d attempts vs %.3f of %d in the 7 days before (z %.1f)',
                    asr, attempts, before_asr, before_attempts, z
                )
                ORDER BY z
            )
            FROM flagged
        )
        WHEN (SELECT count(*) FROM compared) = 0 THEN [
            'too little history: no group has >= 50 attempts on the day and >= 200 in the 7 days before'
        ]
        ELSE [
            printf('%d groups compared with their 7 days before: none dropped', (SELECT count(*) FROM compared))
        ]
    END AS sample,
    (
        SELECT list(
            {
                'group': grp,
                'account_sid': account_sid,
                'direction': direction,
                'trunk': trunk,
                'asr': asr,
                'attempts': attempts,
                'before_asr': before_asr,
                'before_attempts': before_attempts,
                'z': z
            }
            ORDER BY z
        )
        FROM flagged
    ) AS flagged;
