-- calls_day_syncs: one row per sync of a day's window that changed something (the day's first,
-- one that inserted or updated calls, the one that made the day complete), written in the same
-- transaction as its calls: a sync that found nothing new writes nothing, so syncing again leaves
-- every table as it was. calls_days: a view of it, one row per day, saying whether the day is
-- complete or still provisional; and the models' `complete` column, copied from it when a day's
-- model is rebuilt.
--
-- A day is complete once a sync saw it settled: jambonz writes a call when it ends, stamped
-- with its attempt, so a day's window keeps filling until its last call has ended. The
-- intra-day sync (pipelines/intraday.py) syncs today every SYNC_INTRADAY_MINUTES: its rows say
-- complete = false. The daily schedule's run after SYNC_SETTLE_MINUTES says true, and a day once
-- complete stays so (bool_or). `as_of` is jambonz's own clock (its Date header) at the window's
-- first page: what the server had written by then is what the sync holds. The table is only
-- appended to: in a DuckLake, runs of other days insert into it concurrently without conflict.
--
-- Model rows written before this migration keep complete = true (DEFAULT 1: DuckLake adds a
-- column only with a literal default): their days were synced by the daily schedule.
CREATE TABLE IF NOT EXISTS calls_day_syncs (
    day DATE NOT NULL,
    scope_sid VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    settles_at TIMESTAMPTZ NOT NULL,
    complete BOOLEAN NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);
CREATE OR REPLACE VIEW calls_days AS
SELECT
    day,
    bool_or(complete) AS complete,
    count(*) AS changes,
    max(synced_at) AS last_change_at,
    max(as_of) AS as_of,
    max(settles_at) AS settles_at
FROM calls_day_syncs
GROUP BY day;
ALTER TABLE call_durations_daily ADD COLUMN IF NOT EXISTS complete BOOLEAN DEFAULT 1;
ALTER TABLE answer_rates_daily ADD COLUMN IF NOT EXISTS complete BOOLEAN DEFAULT 1;
ALTER TABLE trunk_kpis_daily ADD COLUMN IF NOT EXISTS complete BOOLEAN DEFAULT 1;
ALTER TABLE calls_hourly ADD COLUMN IF NOT EXISTS complete BOOLEAN DEFAULT 1;
