-- The call_keys loaded so far by one WindowLoad: batches of a window must not share a call.
CREATE OR REPLACE TEMP TABLE _window_keys (call_key VARCHAR NOT NULL);
