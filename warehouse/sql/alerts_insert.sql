-- A batch's new and changed rows (WindowLoad._write). DuckDB writes and compresses each row group
-- of the transaction once it is full, while the transaction is open; COMMIT writes the rest.
INSERT INTO alerts BY NAME
SELECT n.*
FROM batch AS n;
