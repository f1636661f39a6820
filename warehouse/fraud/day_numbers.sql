-- day_numbers: every distinct number of the day's calls, calling and called, for the fraud checks'
-- table `fraud_numbers(number, key, country)` (pipelines/fraud.py reads each number once).
-- Parameters: $tz, $day, $window_start, $window_end (the UTC bounds of the local day).
SELECT DISTINCT number
FROM (
    SELECT c.from_number AS number, c.to_number AS called
    FROM calls AS c
    WHERE c.attempted_at >= $window_start
      AND c.attempted_at < $window_end
      AND CAST(timezone($tz, c.attempted_at) AS DATE) = $day
) UNPIVOT INCLUDE NULLS (number FOR side IN (number, called))
WHERE number IS NOT NULL;
