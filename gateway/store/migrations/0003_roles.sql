-- The roles the gateway's pools log in as. Roles belong to the cluster, so
-- they are created only when missing; privileges belong to this database.
--
--   gateway_ingest   writes events and rollups (ingest only)
--   gateway_reader   SELECT on rollup tables only: nothing that holds an actor id
--   gateway_private  a principal's own rows (bound to the principal in SQL) and erasure

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['gateway_ingest', 'gateway_reader', 'gateway_private'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION ensure_events_partition(timestamptz) FROM PUBLIC;

-- Ingest.
GRANT USAGE ON SCHEMA public TO gateway_ingest;
GRANT SELECT, INSERT ON event_ids, events TO gateway_ingest;
GRANT SELECT, INSERT ON video_cell_actors, creator_daily_actors TO gateway_ingest;
GRANT SELECT, INSERT, UPDATE ON
    videos, video_hourly, video_hourly_channels, video_channels, video_audience, creator_daily
    TO gateway_ingest;
GRANT EXECUTE ON FUNCTION ensure_events_partition(timestamptz) TO gateway_ingest;

-- Reader: rollups only.
GRANT USAGE ON SCHEMA public TO gateway_reader;
GRANT SELECT ON
    videos, video_hourly, video_hourly_channels, video_channels, video_audience, creator_daily
    TO gateway_reader;

-- Private: own activity and erasure.
GRANT USAGE ON SCHEMA public TO gateway_private;
GRANT SELECT, DELETE ON event_ids, events TO gateway_private;
GRANT SELECT, DELETE ON video_cell_actors, creator_daily_actors TO gateway_private;
GRANT SELECT, UPDATE ON
    videos, video_hourly, video_hourly_channels, video_channels, video_audience, creator_daily
    TO gateway_private;
