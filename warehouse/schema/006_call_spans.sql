-- Table macros the concurrency columns of trunk_kpis_daily and calls_hourly share.
--
-- call_spans(window_start, window_end): every call in progress at some instant of the window, as
-- (account_sid, direction, trunk, s, e): in progress over [s, e), s its attempt or the window's
-- start for a call carried in from before it (however long it ran). A call with terminated_at <=
-- attempted_at (or none) is never in progress. `terminated_at > window_start` is answered from
-- each row group's min/max: an older day's row group is skipped unless it holds a call still
-- running at the window's start, so the history is not scanned.
CREATE OR REPLACE MACRO call_spans(window_start, window_end) AS TABLE
SELECT
    c.account_sid,
    c.direction,
    c.trunk,
    greatest(c.attempted_at, window_start) AS s,
    c.terminated_at AS e
FROM calls AS c
WHERE c.attempted_at < window_end
  AND c.terminated_at > window_start
  AND c.terminated_at > c.attempted_at;

-- call_levels(window_start, window_end): each start (d = 1) and end (d = -1) of those spans, with
-- the group's level (calls in progress) just after it; at one instant the calls that end leave
-- before the calls that start arrive, so back-to-back calls never count twice.
CREATE OR REPLACE MACRO call_levels(window_start, window_end) AS TABLE
WITH events AS (
    SELECT account_sid, direction, trunk, s AS t, 1 AS d FROM call_spans(window_start, window_end)
    UNION ALL
    SELECT account_sid, direction, trunk, e AS t, -1 AS d FROM call_spans(window_start, window_end)
)
SELECT
    account_sid,
    direction,
    trunk,
    t,
    d,
    sum(d) OVER (
        PARTITION BY account_sid, direction, trunk
        ORDER BY t, d
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS level
FROM events;
