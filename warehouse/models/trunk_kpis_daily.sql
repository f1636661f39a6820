-- trunk_kpis_daily: what operators ask of a trunk's day, in the standard definitions (ITU-T E.411
-- and E.425, RFC 6076).
--
-- One row per (day, account_sid, direction, trunk) with at least one attempt in the day.
--   day, account_sid, direction, trunk   as in answer_rates_daily (day: local date in $tz)
--   attempts, answered   as in answer_rates_daily; asr = answered / attempts
--   busy             unanswered with sip_status 486 or 600
--   no_answer        unanswered with 480
--   rejected         unanswered with 603
--   abandoned        unanswered with 487 (the caller gave up while it rang; jambonz writes
--                    `failed` as the reason, so the status decides)
--   network_failures unanswered with 408 or any 5xx
--   other_failures   every other unanswered call (404, 403, 484, 3xx, other 6xx, NULL status);
--                    the six counts plus answered equal attempts
--   ser              RFC 6076 SER: answered / (attempts - unanswered 3xx); NULL when that is 0
--   seer             RFC 6076 SEER: (answered + unanswered 480/486/600/603)
--                    / (attempts - unanswered 3xx); NULL when that is 0
--   isa              RFC 6076 ISA: unanswered 408/500/503/504 / attempts
--   talk_seconds     sum of duration over answered calls; acd_s their mean (ALOC), NULL if none
--   short_calls      answered calls shorter than 6 s; short_call_ratio = short_calls / answered
--   answer_delay_p50_s, answer_delay_p90_s
--                    quantile_cont of (answered_at - attempted_at) in seconds at millisecond
--                    precision over answered calls with an answer time (post-dial delay plus
--                    ringing: the CDR has no ringing time); NULL when none
--   peak_concurrent  the most calls of the group in progress at one instant of the day; a call
--                    is in progress over [attempted_at, terminated_at) (ringing holds a channel),
--                    calls attempted before the day and still in progress count, however long;
--                    a call with terminated_at <= attempted_at (or none) never is
--   peak_cps         the most attempts of the group within one whole UTC second
--   cost, billed_seconds
--                    sums over the group's calls of what jambonz's managed carrier rated
--                    (calls.cost, calls.billed_seconds); NULL when no call of the group has one
--
-- complete: whether the day had settled when its calls were last synced ($complete, from
-- calls_days: false while the intra-day sync fills today, true once the daily run after
-- SYNC_SETTLE_MINUTES has synced it).
--
-- Parameters: $complete, $tz, $window_start, $window_end (the UTC bounds of the local day), $day. The day's
-- calls are read by their attempted_at range; the calls carried in from earlier days by the
-- macro call_levels (warehouse/schema/006_call_spans.sql), from row-group min/max: no scan of
-- all history.
--
-- Example: yesterday's trunks by SEER, worst first, with the busy hour's channel need
--   SELECT trunk, attempts, seer, asr, peak_concurrent
--   FROM trunk_kpis_daily WHERE day = current_date - 1 ORDER BY seer NULLS LAST;
WITH day_calls AS (
    SELECT
        c.account_sid,
        c.direction,
        c.trunk,
        coalesce(c.answered, false) AS answered,
        c.sip_status,
        c.duration,
        c.attempted_at,
        c.answered_at,
        c.terminated_at,
        c.cost,
        c.billed_seconds
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
),

totals AS (
    SELECT
        account_sid,
        direction,
        trunk,
        count(*) AS attempts,
        count(*) FILTER (WHERE answered) AS answered,
        count(*) FILTER (WHERE NOT answered AND sip_status IN (486, 600)) AS busy,
        count(*) FILTER (WHERE NOT answered AND sip_status = 480) AS no_answer,
        count(*) FILTER (WHERE NOT answered AND sip_status = 603) AS rejected,
        count(*) FILTER (WHERE NOT answered AND sip_status = 487) AS abandoned,
        count(*) FILTER (
            WHERE NOT answered AND (sip_status = 408 OR sip_status BETWEEN 500 AND 599)
        ) AS network_failures,
        count(*) FILTER (WHERE NOT answered AND sip_status BETWEEN 300 AND 399) AS redirected,
        count(*) FILTER (WHERE NOT answered AND sip_status IN (480, 486, 600, 603)) AS effective,
        count(*) FILTER (WHERE NOT answered AND sip_status IN (408, 500, 503, 504)) AS ineffective,
        coalesce(sum(duration) FILTER (WHERE answered), 0) AS talk_seconds,
        avg(duration) FILTER (WHERE answered) AS acd_s,
        count(*) FILTER (WHERE answered AND duration < 6) AS short_calls,
        quantile_cont(
            (epoch_ms(answered_at) - epoch_ms(attempted_at)) / 1000.0, 0.5
        ) FILTER (WHERE answered AND answered_at IS NOT NULL) AS answer_delay_p50_s,
        quantile_cont(
            (epoch_ms(answered_at) - epoch_ms(attempted_at)) / 1000.0, 0.9
        ) FILTER (WHERE answered AND answered_at IS NOT NULL) AS answer_delay_p90_s,
        -- summed as decimals: the same total whatever order the rows come in (a lake's may vary)
        CAST(sum(CAST(cost AS DECIMAL(38, 12))) AS DOUBLE) AS cost,
        sum(billed_seconds) AS billed_seconds
    FROM day_calls
    GROUP BY ALL
),

per_second AS (
    SELECT account_sid, direction, trunk, epoch_ms(attempted_at) // 1000 AS s, count(*) AS n
    FROM day_calls
    GROUP BY ALL
),

cps AS (
    SELECT account_sid, direction, trunk, max(n) AS peak_cps
    FROM per_second
    GROUP BY ALL
),

peaks AS (
    SELECT account_sid, direction, trunk, max(level) AS peak_concurrent
    FROM call_levels($window_start, $window_end)  -- warehouse/schema/006_call_spans.sql
    GROUP BY ALL
)

SELECT
    $day AS day,
    t.account_sid,
    t.direction,
    t.trunk,
    t.attempts,
    t.answered,
    CAST(t.answered AS DOUBLE) / t.attempts AS asr,
    t.busy,
    t.no_answer,
    t.rejected,
    t.abandoned,
    t.network_failures,
    t.attempts - t.answered - t.busy - t.no_answer - t.rejected - t.abandoned
    - t.network_failures AS other_failures,
    CAST(t.answered AS DOUBLE) / nullif(t.attempts - t.redirected, 0) AS ser,
    CAST(t.answered + t.effective AS DOUBLE) / nullif(t.attempts - t.redirected, 0) AS seer,
    CAST(t.ineffective AS DOUBLE) / t.attempts AS isa,
    t.talk_seconds,
    t.acd_s,
    t.short_calls,
    CAST(t.short_calls AS DOUBLE) / nullif(t.answered, 0) AS short_call_ratio,
    t.answer_delay_p50_s,
    t.answer_delay_p90_s,
    coalesce(p.peak_concurrent, 0) AS peak_concurrent,
    c.peak_cps,
    t.cost,
    t.billed_seconds,
    $complete AS complete
FROM totals AS t
LEFT JOIN peaks AS p
    ON p.account_sid IS NOT DISTINCT FROM t.account_sid
    AND p.direction IS NOT DISTINCT FROM t.direction
    AND p.trunk IS NOT DISTINCT FROM t.trunk
JOIN cps AS c
    ON c.account_sid IS NOT DISTINCT FROM t.account_sid
    AND c.direction IS NOT DISTINCT FROM t.direction
    AND c.trunk IS NOT DISTINCT FROM t.trunk;
