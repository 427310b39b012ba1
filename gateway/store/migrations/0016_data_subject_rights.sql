-- A data subject's rights (issue 14): erasure, least privilege for a person's rows, retention.
--
--   gateway_eraser   erases one person at a time (gateway.store.erasure) and drops raw events
--                    past retention (drop_events_partitions_before); row-level security binds it
--                    to the person named by gateway.actor_id, as gateway_private is on events
--   gateway_private  now reads a principal's own events (and the decision log) and nothing else:
--                    the ledger of people, event_ids, videos and the catalogue's version go

DO $$
BEGIN
    CREATE ROLE gateway_eraser LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The ledger remembers the arrival that brought each of its rows. Erasure asks it whether a
-- person was counted in a metric's last release (their first row arrived no later than that
-- release's arrival) or is still waiting in its live totals. The default is the arrival
-- apply_arrival() numbered last in this session (its nextval('arrivals') comes first), so the
-- ledger's inserts need not name it. Rows from before this migration have none (NULL): erasure
-- takes them as released when their metric has any release, which never lowers a count below
-- what was released.
ALTER TABLE video_people ADD COLUMN arrival bigint;
ALTER TABLE video_people ALTER COLUMN arrival SET DEFAULT currval('arrivals');
ALTER TABLE follow_state ADD COLUMN arrival bigint;
ALTER TABLE follow_state ALTER COLUMN arrival SET DEFAULT currval('arrivals');
-- Erasure finds a person's rows by actor alone, under the arrival lock: without these it would
-- read the whole ledger while ingest waits.
CREATE INDEX video_people_actor_idx ON video_people (actor_id);
CREATE INDEX follow_state_actor_idx ON follow_state (actor_id);

-- That an erasure happened, when and by whom; not whose, nor what it removed. subject_key is
-- HMAC-SHA256 of the user id under a key derived from GATEWAY_SECRET (gateway.store.erasure), so
-- that a repeated request is answered ("already erased on …") and idempotent, while the table
-- read without the secret names nobody, and cannot be checked against a list of user ids.
CREATE TABLE erasures (
    erasure_id  uuid        PRIMARY KEY,
    erased_at   timestamptz NOT NULL,
    erased_by   text        NOT NULL,
    reason      text,
    subject_key bytea       NOT NULL
);
CREATE INDEX erasures_subject_idx ON erasures (subject_key, erased_at);

-- Least privilege for gateway_private: `me` and the decision log read events (bound to the
-- principal by events_own_rows), decision_log and decision_bodies. Erasure moved to its own role.
REVOKE ALL ON event_ids, video_people, follow_state, videos, catalog_version FROM gateway_private;
REVOKE DELETE ON events FROM gateway_private;

-- gateway_eraser: one person's rows, wherever they are; the live totals they are counted in.
GRANT USAGE ON SCHEMA public TO gateway_eraser;
GRANT SELECT, DELETE ON events, arrivals_pending, video_people, follow_state TO gateway_eraser;
GRANT SELECT, UPDATE, DELETE ON live_totals, live_cells TO gateway_eraser;
GRANT SELECT ON metric_dimensions TO gateway_eraser;
GRANT SELECT, UPDATE ON app_authorizations TO gateway_eraser;
GRANT SELECT, DELETE ON privacy_spend TO gateway_eraser;
GRANT SELECT, INSERT ON erasures TO gateway_eraser;

-- Row-level security: the eraser sees (and deletes) the rows of the person named by the
-- transaction-local setting gateway.actor_id only; unset, it sees none. The roles that already
-- worked these tables keep all of them.
CREATE POLICY events_erased_rows ON events
    FOR ALL TO gateway_eraser
    USING (actor_id = current_setting('gateway.actor_id', true));

-- On the tables only ingest worked until now, it keeps every row.
DO $$
DECLARE
    person_table text;
BEGIN
    FOREACH person_table IN ARRAY ARRAY['arrivals_pending', 'video_people', 'follow_state'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', person_table);
        EXECUTE format('CREATE POLICY %I ON %I FOR ALL TO gateway_ingest USING (true) WITH CHECK (true)',
                       person_table || '_ingest', person_table);
        EXECUTE format($policy$CREATE POLICY %I ON %I FOR ALL TO gateway_eraser
                                USING (actor_id = current_setting('gateway.actor_id', true))$policy$,
                       person_table || '_erased_rows', person_table);
    END LOOP;
END
$$;

-- The partitions of events and the range of occurred_at each holds (ensure_events_partition
-- makes them a month each, but the bounds are read from the catalogue, not from their names).
CREATE FUNCTION events_partitions()
RETURNS TABLE (relation regclass, name text, starts timestamptz, ends timestamptz)
LANGUAGE sql STABLE SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
AS $$
    SELECT c.oid::regclass, c.relname::text, bounds[1]::timestamptz, bounds[2]::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS bounds
    WHERE i.inhparent = 'events'::regclass
$$;

-- Retention: drops every monthly partition of events that ends at or before p_cutoff, unless
-- events in it still wait in arrivals_pending (a backfill not yet replayed, or live events held
-- behind one): those have not reached the live state that releases are made from. Every other
-- stored event has, so dropping its row changes no release, made or to come. The caller keeps
-- p_cutoff behind the lateness window (gateway.store.retention), so that no live event can still
-- arrive in a dropped month. Returns each partition considered and whether it was dropped.
--
-- Dropping a partition locks events whole: the lock is taken once, for all of them, only when
-- one is due, and given up after lock_timeout (55P03; the daily job tries again later) rather
-- than queueing every reader and writer behind a long transaction.
CREATE FUNCTION drop_events_partitions_before(p_cutoff timestamptz)
RETURNS TABLE (partition_name text, starts timestamptz, ends timestamptz, dropped boolean, held_events bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp SET lock_timeout = '5s' SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    due record;
BEGIN
    IF NOT EXISTS (SELECT FROM events_partitions() p WHERE p.ends <= p_cutoff) THEN
        RETURN;
    END IF;
    LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
    FOR due IN SELECT p.relation, p.name, p.starts, p.ends FROM events_partitions() p WHERE p.ends <= p_cutoff ORDER BY p.starts LOOP
        partition_name := due.name;
        starts := due.starts;
        ends := due.ends;
        SELECT count(*) INTO held_events FROM arrivals_pending a WHERE a.occurred_at >= due.starts AND a.occurred_at < due.ends;
        dropped := held_events = 0;
        IF dropped THEN
            EXECUTE format('DROP TABLE %s', due.relation);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION drop_events_partitions_before(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION events_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_events_partitions_before(timestamptz) TO gateway_eraser;
