-- Call costs: calls rated by jambonz's managed carrier (@jambonz/time-series 0.5.0) carry cost,
-- rate and billed_seconds, which landed in `extra` until now. The columns are added (appended:
-- warehouse/tables.py CALLS_COLUMNS lists them last) and filled from the `extra` of the calls
-- already held, the keys moved out of it (a value of the wrong kind stays in `extra`, as the
-- normalizer would have refused it), so history is not lost by upgrading and a re-sync of an old
-- day finds its calls unchanged. trunk_kpis_daily gains their sums (NULL for days rebuilt
-- before: rebuild a range to fill them).
ALTER TABLE calls ADD COLUMN IF NOT EXISTS cost DOUBLE;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS rate DOUBLE;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS billed_seconds BIGINT;

UPDATE calls SET
    cost = CASE
        WHEN json_type(extra, '$.cost') IN ('BIGINT', 'UBIGINT', 'DOUBLE')
            THEN CAST(extra ->> '$.cost' AS DOUBLE)
    END,
    rate = CASE
        WHEN json_type(extra, '$.rate') IN ('BIGINT', 'UBIGINT', 'DOUBLE')
            THEN CAST(extra ->> '$.rate' AS DOUBLE)
    END,
    billed_seconds = CASE
        WHEN json_type(extra, '$.billed_seconds') IN ('BIGINT', 'UBIGINT')
            THEN TRY_CAST(extra ->> '$.billed_seconds' AS BIGINT)
        WHEN json_type(extra, '$.billed_seconds') = 'DOUBLE'
            AND CAST(extra ->> '$.billed_seconds' AS DOUBLE)
            = trunc(CAST(extra ->> '$.billed_seconds' AS DOUBLE))
            THEN TRY_CAST(CAST(extra ->> '$.billed_seconds' AS DOUBLE) AS BIGINT)
    END
WHERE extra IS NOT NULL
  AND (
      json_exists(extra, '$.cost')
      OR json_exists(extra, '$.rate')
      OR json_exists(extra, '$.billed_seconds')
  );

-- each moved key removed from `extra` (a merge patch's null deletes it), NULL when none is left
UPDATE calls SET
    extra = nullif(
        CAST(json_merge_patch(
            extra,
            json_object(
                'cost', CASE WHEN cost IS NULL THEN extra -> '$.cost' END,
                'rate', CASE WHEN rate IS NULL THEN extra -> '$.rate' END,
                'billed_seconds',
                CASE WHEN billed_seconds IS NULL THEN extra -> '$.billed_seconds' END
            )
        ) AS VARCHAR),
        CAST(json_object() AS VARCHAR)
    )
WHERE cost IS NOT NULL OR rate IS NOT NULL OR billed_seconds IS NOT NULL;

ALTER TABLE trunk_kpis_daily ADD COLUMN IF NOT EXISTS cost DOUBLE;
ALTER TABLE trunk_kpis_daily ADD COLUMN IF NOT EXISTS billed_seconds BIGINT;
