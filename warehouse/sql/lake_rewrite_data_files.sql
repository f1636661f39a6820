-- Lake maintenance, step 3: files whose rows were largely deleted (a model day rebuilt, a call
-- that changed) rewritten without them, so scans stop reading and filtering dead rows.
CALL ducklake_rewrite_data_files('warehouse');
