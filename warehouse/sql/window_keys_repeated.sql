-- Calls written by two batches of one window load (the batches must not share a call): checked
-- once, before COMMIT.
SELECT count(*) - count(DISTINCT k.key) FROM _window_keys AS k;
