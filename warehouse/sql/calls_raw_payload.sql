-- calls_raw.payload of records read as Arrow (warehouse/payloads.py): the relation `r` holds the
-- record's keys as its columns, in the order received; each row becomes one JSON object.
SELECT to_json(r)::VARCHAR AS payload FROM r;
