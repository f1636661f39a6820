-- calls_raw.payload of records read as Arrow (warehouse/payloads.py; the relation `r`: `record`,
-- a struct of the record's keys in the order it came with, and `extra`, its unknown keys as a JSON
-- object or NULL): each record as JSON text, its keys in order, then its unknown keys (`{"a":1}`
-- becomes `,"a":1}` in place of the closing brace).
SELECT CASE
    WHEN r.extra IS NULL THEN r.j
    ELSE left(r.j, length(r.j) - 1) || ',' || substr(r.extra, 2)
END AS payload
FROM (SELECT to_json(r.record)::VARCHAR AS j, r.extra FROM r) AS r;
