-- The staged new and changed rows of several batches, in one statement: from a row group's worth
-- on, DuckDB writes (and compresses) them while the transaction is open, not all at COMMIT.
INSERT INTO calls BY NAME
SELECT s.*
FROM stage_calls AS s;
