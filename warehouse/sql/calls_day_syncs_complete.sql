-- Whether a day is complete: some sync of it saw it settled. NULL when it was never recorded
-- (synced before calls_day_syncs existed); the caller decides what that means.
SELECT bool_or(complete) FROM calls_day_syncs WHERE day = $day;
