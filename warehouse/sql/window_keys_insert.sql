-- `batch`: the batch's keys, one column
INSERT INTO _window_keys SELECT b.key FROM batch AS b;
