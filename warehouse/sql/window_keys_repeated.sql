SELECT count(*) FROM batch AS b SEMI JOIN _window_keys AS k ON k.call_key = b.call_key;
