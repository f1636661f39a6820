-- The call_keys of the batch being loaded (WindowLoad.add), read by the statements after it.
CREATE OR REPLACE TEMP TABLE _batch_keys AS SELECT b.call_key FROM batch_calls AS b;
