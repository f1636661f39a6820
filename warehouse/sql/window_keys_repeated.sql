SELECT count(*) FROM _batch_keys AS b SEMI JOIN _window_keys AS k ON k.call_key = b.call_key;
