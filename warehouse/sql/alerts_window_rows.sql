-- Rows of alerts and alerts_raw stamped in [window_start, window_end): none means every alert of
-- a batch inside the window is new, and a load can skip looking them up.
SELECT
    (SELECT count(*) FROM alerts AS c
     WHERE c.alerted_at >= $window_start AND c.alerted_at < $window_end)
    + (SELECT count(*) FROM alerts_raw AS r
       WHERE r.alerted_at >= $window_start AND r.alerted_at < $window_end);
