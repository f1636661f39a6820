INSERT INTO _window_keys SELECT b.call_key FROM _batch_keys AS b;
