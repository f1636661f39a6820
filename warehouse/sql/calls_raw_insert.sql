INSERT INTO calls_raw BY NAME
SELECT s.*
FROM stage_raw AS s;
