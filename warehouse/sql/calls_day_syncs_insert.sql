-- One sync of a day's window that changed something, in the transaction that loaded it
-- (calls_day_syncs; only ever appended: concurrent runs of other days never conflict on it in a
-- DuckLake).
INSERT INTO calls_day_syncs (
    day, scope_sid, window_start, window_end, as_of, settles_at, complete, inserted, updated,
    synced_at
)
VALUES (
    $day, $scope_sid, $window_start, $window_end, $as_of, $settles_at, $complete, $inserted,
    $updated, $synced_at
);
