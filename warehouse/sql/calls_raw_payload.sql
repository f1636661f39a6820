-- calls_raw.payload of records read as Arrow (warehouse/payloads.py): the relation `r` holds the
-- record's keys as its columns, in the order received, then `extra` (its unknown keys as a JSON
-- object, or NULL). Each row becomes one JSON object; the unknown keys follow the known ones
-- (`{"a":1}` becomes `,"a":1}` in place of the closing brace).
SELECT CASE
    WHEN extra IS NULL THEN j
    ELSE left(j, length(j) - 1) || ',' || substr(extra, 2)
END AS payload
FROM (SELECT to_json(struct_pack(*COLUMNS(* EXCLUDE (extra))))::VARCHAR AS j, extra FROM r);
