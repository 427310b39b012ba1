-- One release history per subject and metric, advanced by arrival.
--
-- Every number the gateway serves is a value of a release: a cumulative
-- snapshot of a metric of a subject (a video's views, likes, comments or
-- shares; a creator's followers), made when the activity that ARRIVED since
-- the previous release involves at least k people new to that metric on that
-- subject, whatever the events' occurred_at. Releases are made by
-- apply_arrival(), in the ingest transaction, for the subjects an arrival
-- touched; nothing ever walks history to answer a question. Principals differ
-- only in which release they may see (gateway.privacy.release).
--
--   live_totals, live_cells   everything arrived so far, per subject and metric (and breakdown cell)
--   video_people, follow_state the people behind them (the ledger: actor ids, never read to answer)
--   releases, release_cells   the history: what may be served, and all that may be
--
-- This replaces the hourly rollups, whose answers were derived per request
-- from occurrence-time buckets (and so moved when a late event arrived).

-- The history's k: the smallest k any principal is given. The gateway keeps it
-- equal to the policy's (gateway.privacy.history_k); a principal
-- with a larger k sees only the releases at which the count of people crossed
-- a multiple of its k.
CREATE TABLE release_settings (
    single_row boolean PRIMARY KEY DEFAULT true CHECK (single_row),
    k          integer NOT NULL CHECK (k >= 0)
);
INSERT INTO release_settings (k) VALUES (5);

-- Metrics: 'v' views, 'l' likes (net of unlikes), 'c' comments, 's' shares (of a video);
-- 'f' followers (of a creator, net: people following). The breakdown cells each metric's
-- releases carry (gateway.privacy.metrics is the table the gateway reads them by):
--   'c' channel, 'r' region, 'a' age band (viewers), 'w' watched to the end.
CREATE TABLE metric_dimensions (
    metric    "char" NOT NULL,
    dimension "char" NOT NULL,
    PRIMARY KEY (metric, dimension)
);
INSERT INTO metric_dimensions (metric, dimension) VALUES ('s', 'c'), ('v', 'r'), ('v', 'a'), ('v', 'w');

-- The people behind a video's metrics: one row per distinct (video, actor, metric, region,
-- age band, channel) seen. One index range scan tells whether an actor is new to a metric
-- and to each cell an event lands in.
CREATE TABLE video_people (
    video_id text COLLATE "C" NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    metric   "char"           NOT NULL,
    region   text COLLATE "C" NOT NULL,  -- 'unknown' when the event had none
    age_band text COLLATE "C" NOT NULL,  -- 'unknown' when the event had none
    channel  share_channel               -- shares only
);
CREATE INDEX video_people_lookup_idx ON video_people (video_id, actor_id, metric);

-- Whether each person follows each creator now: the latest follow or unfollow by
-- occurred_at (an unfollow wins a tie). A row is also the ledger of who is known.
CREATE TABLE follow_state (
    creator_id text COLLATE "C" NOT NULL,
    actor_id   text COLLATE "C" NOT NULL,
    following  boolean          NOT NULL,
    state_at   timestamptz      NOT NULL,
    PRIMARY KEY (creator_id, actor_id)
);

-- Numbers arrivals; a cell changed by arrival n belongs to the next release of its metric.
CREATE SEQUENCE arrivals;

CREATE TABLE live_totals (
    subject_id       text COLLATE "C" NOT NULL,
    metric           "char"           NOT NULL,
    people           bigint           NOT NULL DEFAULT 0,  -- distinct people ever
    events           bigint           NOT NULL DEFAULT 0,  -- the metric's count (net for likes and followers)
    watch_ms         bigint           NOT NULL DEFAULT 0,  -- views only
    released_seq     integer          NOT NULL DEFAULT 0,  -- the last release (0: none)
    released_people  bigint           NOT NULL DEFAULT 0,
    released_at      timestamptz,
    released_arrival bigint           NOT NULL DEFAULT 0,
    PRIMARY KEY (subject_id, metric)
) WITH (fillfactor = 70);

CREATE TABLE live_cells (
    subject_id      text COLLATE "C" NOT NULL,
    metric          "char"           NOT NULL,
    dimension       "char"           NOT NULL,
    value           text COLLATE "C" NOT NULL,
    events          bigint           NOT NULL DEFAULT 0,
    people          bigint           NOT NULL DEFAULT 0,
    changed_arrival bigint           NOT NULL,
    PRIMARY KEY (subject_id, metric, dimension, value)
) WITH (fillfactor = 70);

-- The history. made_at strictly increases with seq per (subject, metric).
CREATE TABLE releases (
    subject_id  text COLLATE "C" NOT NULL,
    metric      "char"           NOT NULL,
    made_at     timestamptz      NOT NULL,
    seq         integer          NOT NULL,
    people      bigint           NOT NULL,
    prev_people bigint           NOT NULL,  -- people at the release before: which multiples of k this one crossed
    events      bigint           NOT NULL,
    watch_ms    bigint           NOT NULL,
    PRIMARY KEY (subject_id, metric, made_at)
);

-- A cell is stored at the releases that changed it; its value at release s is its row with
-- the greatest seq <= s.
CREATE TABLE release_cells (
    subject_id text COLLATE "C" NOT NULL,
    metric     "char"           NOT NULL,
    dimension  "char"           NOT NULL,
    value      text COLLATE "C" NOT NULL,
    seq        integer          NOT NULL,
    events     bigint           NOT NULL,
    people     bigint           NOT NULL,
    PRIMARY KEY (subject_id, metric, dimension, value, seq)
);

-- Events stored but not yet applied to the history, with the time they count as arriving:
-- a backfill's (the end of the hour they occurred in) and, once, every event of a store
-- migrated to this schema (when it was ingested). gateway.store.replay applies them in order.
-- `live`: the event arrived live, about a subject whose backfill was being replayed: it waits
-- for the replay, and is applied after it, at the time it is applied.
CREATE TABLE arrivals_pending (
    event_id    text COLLATE "C" PRIMARY KEY,
    type        text             NOT NULL,
    occurred_at timestamptz      NOT NULL,
    video_id    text COLLATE "C",
    creator_id  text COLLATE "C" NOT NULL,
    actor_id    text COLLATE "C" NOT NULL,
    channel     text,
    region      text COLLATE "C",
    age_band    text COLLATE "C",
    watch_ms    integer,
    completed   boolean,
    text        text,
    anonymous   boolean,
    arrival     timestamptz      NOT NULL,
    live        boolean          NOT NULL DEFAULT false
);
CREATE INDEX arrivals_pending_arrival_idx ON arrivals_pending (arrival, live);
-- The subject of a held event: its video, or for a follow or unfollow the creator's followers.
CREATE INDEX arrivals_pending_subject_idx ON arrivals_pending ((coalesce(video_id, creator_id)), (video_id IS NULL));

-- The staging tables one connection applies arrivals through (ON COMMIT DELETE ROWS: empty
-- after every transaction). Ingest connections call this once (gateway.store.ingest).
CREATE FUNCTION prepare_arrivals() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
        event_id text COLLATE "C", type text, occurred_at timestamptz, video_id text COLLATE "C",
        creator_id text COLLATE "C", actor_id text COLLATE "C", channel text, region text COLLATE "C",
        age_band text COLLATE "C", watch_ms integer, completed boolean, text text, anonymous boolean
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ingest_fresh (LIKE ingest_staging) ON COMMIT DELETE ROWS;
    -- One row per (video, actor, metric, region, age band, channel) of the arrival, with its
    -- counts and which of its cells the actor is new to.
    CREATE TEMP TABLE IF NOT EXISTS arrival_cells (
        video_id text COLLATE "C", actor_id text COLLATE "C", metric "char", region text COLLATE "C",
        age_band text COLLATE "C", channel share_channel, events bigint, watch_ms bigint, completed bigint,
        new_person boolean, new_in_channel boolean, new_in_region boolean, new_in_age_band boolean, known boolean
    ) ON COMMIT DELETE ROWS;
    -- Each (creator, actor)'s latest follow or unfollow in the arrival, beside their state before it.
    CREATE TEMP TABLE IF NOT EXISTS arrival_follows (
        creator_id text COLLATE "C", actor_id text COLLATE "C", following boolean, state_at timestamptz,
        was_following boolean, was_state_at timestamptz
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS arrival_releases (
        subject_id text COLLATE "C", metric "char", made_at timestamptz, seq integer, people bigint,
        prev_people bigint, events bigint, watch_ms bigint, prev_arrival bigint
    ) ON COMMIT DELETE ROWS;
END
$$;

-- Applies the events in ingest_fresh as one arrival at `arrived_at`: the videos they name,
-- the ledger, the live totals and cells, and a release of every (subject, metric) they
-- touched that now has k or more people new since its last release. The caller holds the
-- arrival lock (pg_advisory_xact_lock(7310151952298631524)): whether a person is new is read
-- from the committed ledger, so arrivals are applied one at a time. A `live` arrival's events
-- about a subject with held events (a backfill being replayed) join them instead, to be applied
-- after them (gateway.store.replay). Returns the number of releases made.
CREATE FUNCTION apply_arrival(arrived_at timestamptz, live boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    history_k integer;
    arrival   bigint := nextval('arrivals');
    made      integer;
BEGIN
    SELECT s.k INTO history_k FROM release_settings s;
    IF live AND EXISTS (SELECT FROM arrivals_pending) THEN
        WITH held AS (
            DELETE FROM ingest_fresh f
            WHERE EXISTS (SELECT FROM arrivals_pending p
                          WHERE coalesce(p.video_id, p.creator_id) = coalesce(f.video_id, f.creator_id)
                            AND (p.video_id IS NULL) = (f.video_id IS NULL))
            RETURNING f.*
        )
        INSERT INTO arrivals_pending
        SELECT held.*, arrived_at, true FROM held;
    END IF;
    DELETE FROM arrival_cells;
    DELETE FROM arrival_follows;
    DELETE FROM arrival_releases;

    INSERT INTO videos AS v (video_id, creator_id, published_at)
    SELECT video_id,
           coalesce(min(creator_id) FILTER (WHERE type = 'video_published'), min(creator_id)),
           min(occurred_at) FILTER (WHERE type = 'video_published')
    FROM ingest_fresh
    WHERE video_id IS NOT NULL
    GROUP BY video_id
    ORDER BY video_id
    ON CONFLICT (video_id) DO UPDATE SET
        creator_id   = CASE WHEN v.published_at IS NULL AND excluded.published_at IS NOT NULL
                            THEN excluded.creator_id ELSE v.creator_id END,
        published_at = least(v.published_at, excluded.published_at)
    WHERE excluded.published_at IS NOT NULL
      AND (v.published_at IS NULL OR excluded.published_at < v.published_at);

    INSERT INTO arrival_cells
    SELECT c.video_id, c.actor_id, c.metric, c.region, c.age_band, c.channel,
           c.events, c.watch_ms, c.completed,
           seen.any_row IS NULL,
           NOT coalesce(seen.channel, false),
           NOT coalesce(seen.region, false),
           NOT coalesce(seen.age_band, false),
           coalesce(seen.cell, false)
    FROM (
        SELECT video_id, actor_id,
               (CASE type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'l'
                          WHEN 'comment' THEN 'c' ELSE 's' END)::"char" AS metric,
               coalesce(region, 'unknown') AS region,
               coalesce(age_band, 'unknown') AS age_band,
               channel::share_channel AS channel,
               sum(CASE type WHEN 'unlike' THEN -1 ELSE 1 END) AS events,
               coalesce(sum(watch_ms), 0) AS watch_ms,
               count(*) FILTER (WHERE completed) AS completed
        FROM ingest_fresh
        WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
        GROUP BY 1, 2, 3, 4, 5, 6
    ) c
    LEFT JOIN LATERAL (
        SELECT true AS any_row,
               bool_or(l.channel = c.channel) AS channel,
               bool_or(l.region = c.region) AS region,
               bool_or(l.age_band = c.age_band) AS age_band,
               bool_or(l.region = c.region AND l.age_band = c.age_band
                       AND l.channel IS NOT DISTINCT FROM c.channel) AS cell
        FROM video_people l
        WHERE l.video_id = c.video_id AND l.actor_id = c.actor_id AND l.metric = c.metric
        HAVING count(*) > 0
    ) seen ON true;

    INSERT INTO video_people (video_id, actor_id, metric, region, age_band, channel)
    SELECT video_id, actor_id, metric, region, age_band, channel
    FROM arrival_cells
    WHERE NOT known
    ORDER BY 1, 2, 3;

    INSERT INTO live_totals AS t (subject_id, metric, people, events, watch_ms)
    SELECT video_id, metric, count(DISTINCT actor_id) FILTER (WHERE new_person), sum(events), sum(watch_ms)
    FROM arrival_cells
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (subject_id, metric) DO UPDATE SET
        people   = t.people + excluded.people,
        events   = t.events + excluded.events,
        watch_ms = t.watch_ms + excluded.watch_ms;

    -- Each arrival row lands in one cell per dimension its metric is broken down by.
    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT c.video_id, c.metric, d.dimension, d.value, sum(d.events),
           count(DISTINCT c.actor_id) FILTER (WHERE d.new_person), arrival
    FROM arrival_cells c
    CROSS JOIN LATERAL (VALUES ('c'::"char", c.channel::text, c.events, c.new_in_channel),
                               ('r', c.region, c.events, c.new_in_region),
                               ('a', c.age_band, c.events, c.new_in_age_band),
                               ('w', CASE WHEN c.completed > 0 THEN 'completed' END, c.completed, false))
        AS d (dimension, value, events, new_person)
    JOIN metric_dimensions m ON m.metric = c.metric AND m.dimension = d.dimension
    WHERE d.value IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subject_id, metric, dimension, value) DO UPDATE SET
        events          = l.events + excluded.events,
        people          = l.people + excluded.people,
        changed_arrival = excluded.changed_arrival;

    -- Followers count people by their net effect: what each one's latest follow or unfollow says.
    INSERT INTO arrival_follows
    SELECT l.creator_id, l.actor_id, l.following, l.occurred_at, s.following, s.state_at
    FROM (
        SELECT DISTINCT ON (creator_id, actor_id) creator_id, actor_id, type = 'follow' AS following, occurred_at
        FROM ingest_fresh
        WHERE type IN ('follow', 'unfollow')
        ORDER BY creator_id, actor_id, occurred_at DESC, type DESC  -- 'unfollow' > 'follow': an unfollow wins a tie
    ) l
    LEFT JOIN follow_state s USING (creator_id, actor_id);

    INSERT INTO follow_state AS s (creator_id, actor_id, following, state_at)
    SELECT creator_id, actor_id, following, state_at
    FROM arrival_follows
    ORDER BY 1, 2
    ON CONFLICT (creator_id, actor_id) DO UPDATE SET following = excluded.following, state_at = excluded.state_at
    WHERE (excluded.state_at, NOT excluded.following) > (s.state_at, NOT s.following);

    INSERT INTO live_totals AS t (subject_id, metric, people, events)
    SELECT creator_id, 'f',
           count(*) FILTER (WHERE was_following IS NULL),
           sum(CASE WHEN was_following IS NULL THEN following::int
                    WHEN (state_at, NOT following) > (was_state_at, NOT was_following)
                    THEN following::int - was_following::int
                    ELSE 0 END)
    FROM arrival_follows
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (subject_id, metric) DO UPDATE SET
        people = t.people + excluded.people,
        events = t.events + excluded.events;

    -- Release every touched (subject, metric) with k or more people new since its last release.
    INSERT INTO arrival_releases
    SELECT t.subject_id, t.metric,
           greatest(arrived_at, t.released_at + interval '1 microsecond'),
           t.released_seq + 1, t.people, t.released_people, t.events, t.watch_ms, t.released_arrival
    FROM live_totals t
    JOIN (SELECT DISTINCT video_id, metric FROM arrival_cells
          UNION ALL
          SELECT DISTINCT creator_id, 'f'::"char" FROM arrival_follows) AS touched (subject_id, metric)
      ON touched.subject_id = t.subject_id AND touched.metric = t.metric
    WHERE t.people - t.released_people >= history_k;
    GET DIAGNOSTICS made = ROW_COUNT;
    IF made = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO releases (subject_id, metric, made_at, seq, people, prev_people, events, watch_ms)
    SELECT subject_id, metric, made_at, seq, people, prev_people, events, watch_ms
    FROM arrival_releases
    ORDER BY 1, 2;

    UPDATE live_totals t
    SET released_seq = r.seq, released_people = r.people, released_at = r.made_at, released_arrival = arrival
    FROM arrival_releases r
    WHERE t.subject_id = r.subject_id AND t.metric = r.metric;

    INSERT INTO release_cells (subject_id, metric, dimension, value, seq, events, people)
    SELECT c.subject_id, c.metric, c.dimension, c.value, r.seq, c.events, c.people
    FROM arrival_releases r
    JOIN live_cells c ON c.subject_id = r.subject_id AND c.metric = r.metric AND c.changed_arrival > r.prev_arrival
    ORDER BY 1, 2, 3, 4;

    RETURN made;
END
$$;

-- The store's events so far arrive again, in the order they were ingested: gateway.store.migrate
-- replays them after this migration (gateway.store.replay, one arrival a transaction), and
-- forgets the request once none is left.
CREATE TABLE history_rebuild (requested_at timestamptz NOT NULL);
INSERT INTO arrivals_pending
SELECT event_id, type::text, occurred_at, video_id, creator_id, actor_id, channel::text, region, age_band,
       watch_ms, completed, text, anonymous, ingested_at, false
FROM events;
INSERT INTO history_rebuild SELECT now() WHERE EXISTS (SELECT FROM arrivals_pending);

-- The hourly rollups and what read them give way to the history.
DROP FUNCTION actor_units(text, "char"[], text, timestamptz);
DROP FUNCTION audience_released(text, text, timestamptz);
DROP TABLE video_hourly, video_hourly_channels, video_channels, video_audience, creator_daily,
           video_cell_actors, creator_daily_actors;

-- Ingest writes everything here; the reader sees the history only (no actor id, no live
-- total); the private role reads and erases a person's own rows.
GRANT SELECT, UPDATE ON release_settings TO gateway_ingest;
GRANT SELECT ON metric_dimensions TO gateway_ingest;
GRANT SELECT, INSERT ON releases, release_cells TO gateway_ingest;
-- (DELETE: a replay starts the unreleased live state of a backfilled subject afresh, gateway.store.replay.)
GRANT SELECT, INSERT, UPDATE, DELETE ON video_people, follow_state, live_totals, live_cells TO gateway_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON arrivals_pending TO gateway_ingest;
GRANT USAGE ON SEQUENCE arrivals TO gateway_ingest;
GRANT SELECT ON releases, release_cells TO gateway_reader;
GRANT SELECT, DELETE ON video_people, follow_state TO gateway_private;
