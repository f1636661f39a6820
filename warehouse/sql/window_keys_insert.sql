INSERT INTO _window_keys SELECT b.call_key FROM batch AS b;
