INSERT INTO _window_keys SELECT b.call_key FROM batch_calls AS b;
