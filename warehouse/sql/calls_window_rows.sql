-- Rows of calls and calls_raw attempted in [window_start, window_end): none means every call of
-- a batch inside the window is new, and a load can skip looking them up.
SELECT
    (SELECT count(*) FROM calls AS c
     WHERE c.attempted_at >= $window_start AND c.attempted_at < $window_end)
    + (SELECT count(*) FROM calls_raw AS r
       WHERE r.attempted_at >= $window_start AND r.attempted_at < $window_end);
