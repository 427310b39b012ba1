-- Reach, retention, comment sentiment and audience activity (issue 15), as values of the release
-- history like every other number: each is made by apply_arrival() into releases and release cells,
-- and nothing reads the events or the ledgers to answer.
--
--   reach              of a video: the people of its views' releases (already counted); of a
--                      creator: metric 'a' of the creator (subject = creator id), the distinct
--                      viewers across all their videos, each counted once, from a new ledger:
--   creator_viewers    one row per (creator, viewer, hour of the week in UTC) seen: whether a
--                      person is new to the creator, and to each hour cell (actor ids: never read
--                      to answer). The creator's releases of 'a' carry dimension 'h', the distinct
--                      viewers by hour of the week (0 = Monday 00:00–01:00 UTC … 167), which
--                      Creator.audienceActivity serves suppressed with complements.
--   retention          dimension 'd' (depth) of views: each viewer of a video with a known duration
--                      sits in one cell, the furthest tenth of the video any single view of theirs
--                      reached ('000' … '090', and '100': to the end). The ledger of viewers keeps
--                      their longest view and the cell they are in (`depth`), so a viewer who
--                      watches further moves between cells, counted once. The share still watching
--                      at p % is the viewers in cells ≥ p over all of them, served only where it
--                      follows from the release's total and its served cells
--                      (gateway.privacy.retention).
--   videos.duration_ms from the video's video_published event (validated at ingest); the first
--                      known stays. Views applied before a video's duration was known join the
--                      depth cells in the arrival that makes it known.
--   sentiment          a comment's class (positive, neutral, negative), computed once at ingest
--                      (gateway.ingest.sentiment) and kept with its event, as its text already was:
--                      no more of the text is kept than before. Dimension 's' of comments counts
--                      commenters (people) per class; the ledger of people remembers each
--                      commenter's classes, as it remembers sharers' channels. Comments stored
--                      before this migration have no class and are in no sentiment cell.

CREATE TYPE comment_sentiment AS ENUM ('positive', 'neutral', 'negative');

ALTER TABLE events
    ADD COLUMN duration_ms integer CHECK (duration_ms > 0),
    ADD COLUMN sentiment   comment_sentiment,
    ADD CHECK (duration_ms IS NULL OR type = 'video_published'),
    ADD CHECK (sentiment IS NULL OR type = 'comment');
ALTER TABLE arrivals_pending ADD COLUMN duration_ms integer, ADD COLUMN sentiment text;
ALTER TABLE videos ADD COLUMN duration_ms integer CHECK (duration_ms > 0);

ALTER TABLE video_people ADD COLUMN sentiment comment_sentiment;  -- comments only
ALTER TABLE video_viewers
    ADD COLUMN longest_view_ms bigint NOT NULL DEFAULT 0,  -- their longest single view
    ADD COLUMN depth           smallint;                   -- the depth cell they are in (NULL: none, no duration known)
-- Of the views applied so far (a replay applies the held ones through apply_arrival below).
UPDATE video_viewers l SET longest_view_ms = e.longest
FROM (SELECT video_id, actor_id, max(watch_ms) AS longest
      FROM events e
      WHERE e.type = 'view' AND NOT EXISTS (SELECT FROM arrivals_pending p WHERE p.event_id = e.event_id)
      GROUP BY 1, 2) e
WHERE e.video_id = l.video_id AND e.actor_id = l.actor_id;

CREATE TABLE creator_viewers (
    creator_id   text COLLATE "C" NOT NULL,
    actor_id     text COLLATE "C" NOT NULL,
    hour_of_week smallint         NOT NULL CHECK (hour_of_week BETWEEN 0 AND 167),
    -- The arrival that brought the row (as on the other ledgers, migration 0016): erasure asks it.
    arrival      bigint           DEFAULT currval('arrivals'),
    PRIMARY KEY (creator_id, actor_id, hour_of_week)
);
CREATE INDEX creator_viewers_actor_idx ON creator_viewers (actor_id);

INSERT INTO metric_dimensions (metric, dimension) VALUES ('v', 'd'), ('c', 's'), ('a', 'h');

-- The furthest tenth of a video of `duration` ms that a view of `watched` ms reached: 0 … 10.
CREATE FUNCTION watched_depth(watched bigint, duration integer) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT least(10, watched * 10 / duration)::smallint';

-- The key of a depth's cell: its percent, in three digits ('000' … '100'), so that the cells' keys
-- sort as their depths do (complementary suppression takes the first served cell by key).
CREATE FUNCTION depth_cell(depth smallint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$SELECT lpad((depth * 10)::text, 3, '0')$$;

-- The hour of the week (UTC) a moment falls in: 0 = Monday 00:00–01:00 … 167 = Sunday 23:00–24:00.
CREATE FUNCTION hour_of_week(moment timestamptz) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$SELECT ((extract(isodow FROM moment AT TIME ZONE 'UTC') - 1) * 24 + extract(hour FROM moment AT TIME ZONE 'UTC'))::smallint$$;

-- The creators' audiences of what has been applied (events held for a replay are applied later,
-- through apply_arrival below), changed at an arrival after every release so far: the next release
-- of each creator's audience holds them. (No video has a duration yet, and no comment a class.)
INSERT INTO creator_viewers (creator_id, actor_id, hour_of_week, arrival)
SELECT DISTINCT v.creator_id, e.actor_id, hour_of_week(e.occurred_at), 0
FROM events e JOIN videos v ON v.video_id = e.video_id
WHERE e.type = 'view' AND NOT EXISTS (SELECT FROM arrivals_pending p WHERE p.event_id = e.event_id)
ORDER BY 1, 2, 3;
INSERT INTO live_totals (subject_id, metric, people, events)
SELECT creator_id, 'a', count(DISTINCT actor_id), count(DISTINCT actor_id)
FROM creator_viewers
GROUP BY 1
ORDER BY 1;
WITH arrival AS (SELECT nextval('arrivals') AS number)
INSERT INTO live_cells (subject_id, metric, dimension, value, events, people, changed_arrival)
SELECT creator_id, 'a', 'h', hour_of_week::text, count(*), count(*), (SELECT number FROM arrival)
FROM creator_viewers
GROUP BY 1, 4
ORDER BY 1, 4;

CREATE OR REPLACE FUNCTION prepare_arrivals() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
        event_id text COLLATE "C", type text, occurred_at timestamptz, video_id text COLLATE "C",
        creator_id text COLLATE "C", actor_id text COLLATE "C", channel text, region text COLLATE "C",
        age_band text COLLATE "C", watch_ms integer, completed boolean, text text, anonymous boolean,
        duration_ms integer, sentiment text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS ingest_fresh (LIKE ingest_staging) ON COMMIT DELETE ROWS;
    -- One row per (video, actor, metric, region, age band, channel, sentiment) of the arrival, with
    -- its counts and which of its cells the actor is new to.
    CREATE TEMP TABLE IF NOT EXISTS arrival_cells (
        video_id text COLLATE "C", actor_id text COLLATE "C", metric "char", region text COLLATE "C",
        age_band text COLLATE "C", channel share_channel, sentiment comment_sentiment, events bigint,
        watch_ms bigint, longest_ms bigint, completed bigint, new_person boolean, new_in_channel boolean,
        new_in_region boolean, new_in_age_band boolean, new_in_sentiment boolean, known boolean
    ) ON COMMIT DELETE ROWS;
    -- Each viewer of the arrival (per video), beside what the ledger knew of them before it.
    CREATE TEMP TABLE IF NOT EXISTS arrival_viewers (
        video_id text COLLATE "C", actor_id text COLLATE "C", watch_ms bigint, longest_ms bigint, completed boolean,
        not_completed boolean, watched_before bigint, completed_before boolean, not_completed_before boolean
    ) ON COMMIT DELETE ROWS;
    -- The videos whose duration the arrival makes known.
    CREATE TEMP TABLE IF NOT EXISTS arrival_timed (video_id text COLLATE "C") ON COMMIT DELETE ROWS;
    -- Each viewer whose depth cell the arrival may move: the cell before it and after it.
    CREATE TEMP TABLE IF NOT EXISTS arrival_depths (
        video_id text COLLATE "C", actor_id text COLLATE "C", depth_before smallint, depth_after smallint
    ) ON COMMIT DELETE ROWS;
    -- Each (creator, viewer, hour of the week) of the arrival, and whether the viewer is new to the
    -- creator and to the hour.
    CREATE TEMP TABLE IF NOT EXISTS arrival_audience (
        creator_id text COLLATE "C", actor_id text COLLATE "C", hour_of_week smallint,
        new_person boolean, new_in_hour boolean
    ) ON COMMIT DELETE ROWS;
    -- Each (creator, actor)'s latest follow or unfollow in the arrival, beside their state before it.
    CREATE TEMP TABLE IF NOT EXISTS arrival_follows (
        creator_id text COLLATE "C", actor_id text COLLATE "C", following boolean, state_at timestamptz,
        was_following boolean, was_state_at timestamptz
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS arrival_releases (
        subject_id text COLLATE "C", metric "char", made_at timestamptz, seq integer, people bigint,
        prev_people bigint, events bigint, watch_capped_ms bigint, prev_arrival bigint
    ) ON COMMIT DELETE ROWS;
END
$$;

-- As in migration 0018, and: a video_published event's duration makes the video's duration known
-- (the first known stays); a comment lands in the sentiment cell of its class, its commenter new
-- to it the first time; each viewer of a video with a known duration sits in the depth cell of
-- their longest view (moving when it grows, or joining when the duration becomes known); and
-- each view makes its viewer known to the creator of its video (metric 'a' of the creator, a
-- person new to it counting once) and to the hour of the week it occurred in.
CREATE OR REPLACE FUNCTION apply_arrival(arrived_at timestamptz, live boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    history_k integer;
    watch_cap integer := watch_cap_ms();
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
        INSERT INTO arrivals_pending (event_id, type, occurred_at, video_id, creator_id, actor_id, channel, region,
                                      age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment, arrival, live)
        SELECT held.event_id, held.type, held.occurred_at, held.video_id, held.creator_id, held.actor_id, held.channel,
               held.region, held.age_band, held.watch_ms, held.completed, held.text, held.anonymous, held.duration_ms,
               held.sentiment, arrived_at, true
        FROM held;
    END IF;
    DELETE FROM arrival_cells;
    DELETE FROM arrival_viewers;
    DELETE FROM arrival_timed;
    DELETE FROM arrival_depths;
    DELETE FROM arrival_audience;
    DELETE FROM arrival_follows;
    DELETE FROM arrival_releases;

    INSERT INTO arrival_timed
    SELECT DISTINCT f.video_id
    FROM ingest_fresh f
    WHERE f.type = 'video_published' AND f.duration_ms IS NOT NULL
      AND NOT EXISTS (SELECT FROM videos v WHERE v.video_id = f.video_id AND v.duration_ms IS NOT NULL);

    INSERT INTO videos AS v (video_id, creator_id, published_at, duration_ms)
    SELECT video_id,
           coalesce(min(creator_id) FILTER (WHERE type = 'video_published'), min(creator_id)),
           min(occurred_at) FILTER (WHERE type = 'video_published'),
           (array_agg(duration_ms ORDER BY occurred_at, event_id) FILTER (WHERE type = 'video_published' AND duration_ms IS NOT NULL))[1]
    FROM ingest_fresh
    WHERE video_id IS NOT NULL
    GROUP BY video_id
    ORDER BY video_id
    ON CONFLICT (video_id) DO UPDATE SET
        creator_id   = CASE WHEN v.published_at IS NULL AND excluded.published_at IS NOT NULL
                            THEN excluded.creator_id ELSE v.creator_id END,
        published_at = least(v.published_at, excluded.published_at),
        duration_ms  = coalesce(v.duration_ms, excluded.duration_ms)
    WHERE (excluded.published_at IS NOT NULL AND (v.published_at IS NULL OR excluded.published_at < v.published_at))
       OR (v.duration_ms IS NULL AND excluded.duration_ms IS NOT NULL);

    INSERT INTO arrival_cells
    SELECT c.video_id, c.actor_id, c.metric, c.region, c.age_band, c.channel, c.sentiment,
           c.events, c.watch_ms, c.longest_ms, c.completed,
           seen.any_row IS NULL,
           NOT coalesce(seen.channel, false),
           NOT coalesce(seen.region, false),
           NOT coalesce(seen.age_band, false),
           NOT coalesce(seen.sentiment, false),
           coalesce(seen.cell, false)
    FROM (
        SELECT video_id, actor_id,
               (CASE type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'l'
                          WHEN 'comment' THEN 'c' ELSE 's' END)::"char" AS metric,
               CASE WHEN anonymous_share THEN 'unknown' ELSE coalesce(region, 'unknown') END AS region,
               CASE WHEN anonymous_share THEN 'unknown' ELSE coalesce(age_band, 'unknown') END AS age_band,
               CASE WHEN anonymous_share THEN NULL ELSE channel::share_channel END AS channel,
               sentiment::comment_sentiment AS sentiment,
               sum(CASE type WHEN 'unlike' THEN -1 ELSE 1 END) AS events,
               coalesce(sum(watch_ms), 0) AS watch_ms,
               coalesce(max(watch_ms), 0) AS longest_ms,
               count(*) FILTER (WHERE completed) AS completed
        FROM (SELECT f.*, f.type = 'share' AND coalesce(f.anonymous, false) AS anonymous_share
              FROM ingest_fresh f) fresh
        WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ) c
    LEFT JOIN LATERAL (
        SELECT true AS any_row,
               bool_or(l.channel IS NOT DISTINCT FROM c.channel) AS channel,
               bool_or(l.region = c.region) AS region,
               bool_or(l.age_band = c.age_band) AS age_band,
               bool_or(l.sentiment = c.sentiment) AS sentiment,
               bool_or(l.region = c.region AND l.age_band = c.age_band
                       AND l.channel IS NOT DISTINCT FROM c.channel
                       AND l.sentiment IS NOT DISTINCT FROM c.sentiment) AS cell
        FROM video_people l
        WHERE l.video_id = c.video_id AND l.actor_id = c.actor_id AND l.metric = c.metric
        HAVING count(*) > 0
    ) seen ON true;

    INSERT INTO video_people (video_id, actor_id, metric, region, age_band, channel, sentiment)
    SELECT video_id, actor_id, metric, region, age_band, channel, sentiment
    FROM arrival_cells
    WHERE NOT known
    ORDER BY 1, 2, 3;

    INSERT INTO arrival_viewers
    SELECT a.video_id, a.actor_id, a.watch_ms, a.longest_ms, a.completed, a.not_completed,
           coalesce(l.watch_ms, 0), coalesce(l.completed, false), coalesce(l.not_completed, false)
    FROM (SELECT video_id, actor_id, sum(watch_ms) AS watch_ms, max(longest_ms) AS longest_ms,
                 bool_or(completed > 0) AS completed, bool_or(events > completed) AS not_completed
          FROM arrival_cells
          WHERE metric = 'v'
          GROUP BY 1, 2) a
    LEFT JOIN video_viewers l ON l.video_id = a.video_id AND l.actor_id = a.actor_id;

    INSERT INTO video_viewers AS l (video_id, actor_id, watch_ms, completed, not_completed, longest_view_ms)
    SELECT video_id, actor_id, watch_ms, completed, not_completed, longest_ms
    FROM arrival_viewers
    ORDER BY 1, 2
    ON CONFLICT (video_id, actor_id) DO UPDATE SET
        watch_ms        = l.watch_ms + excluded.watch_ms,
        completed       = l.completed OR excluded.completed,
        not_completed   = l.not_completed OR excluded.not_completed,
        longest_view_ms = greatest(l.longest_view_ms, excluded.longest_view_ms);

    -- The depth cell of each viewer of the arrival, and of every viewer of a video whose duration
    -- it makes known, from their longest view; the ledger remembers it.
    INSERT INTO arrival_depths
    SELECT l.video_id, l.actor_id, l.depth, watched_depth(l.longest_view_ms, v.duration_ms)
    FROM arrival_viewers a
    JOIN videos v ON v.video_id = a.video_id
    JOIN video_viewers l ON l.video_id = a.video_id AND l.actor_id = a.actor_id
    WHERE v.duration_ms IS NOT NULL
    UNION
    SELECT l.video_id, l.actor_id, l.depth, watched_depth(l.longest_view_ms, v.duration_ms)
    FROM arrival_timed t
    JOIN videos v ON v.video_id = t.video_id
    JOIN video_viewers l ON l.video_id = t.video_id;

    UPDATE video_viewers l SET depth = d.depth_after
    FROM arrival_depths d
    WHERE l.video_id = d.video_id AND l.actor_id = d.actor_id AND d.depth_before IS DISTINCT FROM d.depth_after;

    -- A viewer's watch time adds to the capped sum what takes them nearer the cap, no more.
    INSERT INTO live_totals AS t (subject_id, metric, people, events, watch_capped_ms)
    SELECT c.video_id, c.metric, count(DISTINCT c.actor_id) FILTER (WHERE c.new_person), sum(c.events),
           coalesce((SELECT sum(least(w.watched_before + w.watch_ms, watch_cap) - least(w.watched_before, watch_cap))
                     FROM arrival_viewers w
                     WHERE w.video_id = c.video_id AND c.metric = 'v'), 0)
    FROM arrival_cells c
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (subject_id, metric) DO UPDATE SET
        people          = t.people + excluded.people,
        events          = t.events + excluded.events,
        watch_capped_ms = t.watch_capped_ms + excluded.watch_capped_ms;

    -- Each arrival row lands in one cell per dimension its metric is broken down by (an anonymous
    -- share in the channel 'undisclosed'); its views in the completion cells their `completed` says
    -- (a viewer is new to each the first time); a comment in its class's cell, if it has one.
    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT c.video_id, c.metric, d.dimension, d.value, sum(d.events),
           count(DISTINCT c.actor_id) FILTER (WHERE d.new_person), arrival
    FROM arrival_cells c
    LEFT JOIN arrival_viewers w ON w.video_id = c.video_id AND w.actor_id = c.actor_id AND c.metric = 'v'
    CROSS JOIN LATERAL (VALUES ('c'::"char", coalesce(c.channel::text, 'undisclosed'), c.events, c.new_in_channel),
                               ('r', c.region, c.events, c.new_in_region),
                               ('a', c.age_band, c.events, c.new_in_age_band),
                               ('s', c.sentiment::text, c.events, c.new_in_sentiment),
                               ('w', CASE WHEN c.completed > 0 THEN 'completed' END, c.completed,
                                NOT coalesce(w.completed_before, true)),
                               ('w', CASE WHEN c.events > c.completed THEN 'not_completed' END, c.events - c.completed,
                                NOT coalesce(w.not_completed_before, true)))
        AS d (dimension, value, events, new_person)
    JOIN metric_dimensions m ON m.metric = c.metric AND m.dimension = d.dimension
    WHERE d.value IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subject_id, metric, dimension, value) DO UPDATE SET
        events          = l.events + excluded.events,
        people          = l.people + excluded.people,
        changed_arrival = excluded.changed_arrival;

    -- A viewer who moved leaves their old depth cell and joins the new one (people and events alike:
    -- a depth cell counts viewers).
    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT d.video_id, 'v', 'd', depth_cell(moved.depth), sum(moved.change), sum(moved.change), arrival
    FROM arrival_depths d
    CROSS JOIN LATERAL (VALUES (d.depth_after, 1), (d.depth_before, -1)) AS moved (depth, change)
    WHERE d.depth_before IS DISTINCT FROM d.depth_after AND moved.depth IS NOT NULL
    GROUP BY 1, 4
    ORDER BY 1, 4
    ON CONFLICT (subject_id, metric, dimension, value) DO UPDATE SET
        events          = l.events + excluded.events,
        people          = l.people + excluded.people,
        changed_arrival = excluded.changed_arrival;

    -- The creators' audiences: each view makes its viewer known to its video's creator and to the
    -- hour of the week it occurred in.
    INSERT INTO arrival_audience
    SELECT a.creator_id, a.actor_id, a.hour_of_week,
           NOT EXISTS (SELECT FROM creator_viewers l WHERE l.creator_id = a.creator_id AND l.actor_id = a.actor_id),
           NOT EXISTS (SELECT FROM creator_viewers l
                       WHERE l.creator_id = a.creator_id AND l.actor_id = a.actor_id AND l.hour_of_week = a.hour_of_week)
    FROM (SELECT DISTINCT v.creator_id, f.actor_id, hour_of_week(f.occurred_at) AS hour_of_week
          FROM ingest_fresh f JOIN videos v ON v.video_id = f.video_id
          WHERE f.type = 'view') a;

    INSERT INTO creator_viewers (creator_id, actor_id, hour_of_week)
    SELECT creator_id, actor_id, hour_of_week
    FROM arrival_audience
    WHERE new_in_hour
    ORDER BY 1, 2, 3;

    INSERT INTO live_totals AS t (subject_id, metric, people, events)
    SELECT creator_id, 'a', count(DISTINCT actor_id) FILTER (WHERE new_person), count(DISTINCT actor_id) FILTER (WHERE new_person)
    FROM arrival_audience
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (subject_id, metric) DO UPDATE SET
        people = t.people + excluded.people,
        events = t.events + excluded.events;

    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT creator_id, 'a', 'h', hour_of_week::text, count(*), count(*), arrival
    FROM arrival_audience
    WHERE new_in_hour
    GROUP BY 1, 4
    ORDER BY 1, 4
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
           t.released_seq + 1, t.people, t.released_people, t.events, t.watch_capped_ms, t.released_arrival
    FROM live_totals t
    JOIN (SELECT DISTINCT video_id, metric FROM arrival_cells
          UNION ALL
          SELECT DISTINCT creator_id, 'a'::"char" FROM arrival_audience
          UNION ALL
          SELECT DISTINCT creator_id, 'f'::"char" FROM arrival_follows) AS touched (subject_id, metric)
      ON touched.subject_id = t.subject_id AND touched.metric = t.metric
    WHERE t.people - t.released_people >= history_k;
    GET DIAGNOSTICS made = ROW_COUNT;
    IF made = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO releases (subject_id, metric, made_at, seq, people, prev_people, events, watch_capped_ms, watch_cap_ms)
    SELECT subject_id, metric, made_at, seq, people, prev_people, events, watch_capped_ms, watch_cap
    FROM arrival_releases
    ORDER BY 1, 2;

    UPDATE live_totals t
    SET released_seq = r.seq, released_people = r.people, released_at = r.made_at, released_arrival = arrival
    FROM arrival_releases r
    WHERE t.subject_id = r.subject_id AND t.metric = r.metric;

    -- A cell changed since the last release but back where that release had it (an erasure took
    -- out the part of someone not yet released) gets no row: a store that never saw them has none.
    INSERT INTO release_cells (subject_id, metric, dimension, value, seq, events, people)
    SELECT c.subject_id, c.metric, c.dimension, c.value, r.seq, c.events, c.people
    FROM arrival_releases r
    JOIN live_cells c ON c.subject_id = r.subject_id AND c.metric = r.metric AND c.changed_arrival > r.prev_arrival
    LEFT JOIN LATERAL (
        SELECT p.events, p.people FROM release_cells p
        WHERE p.subject_id = c.subject_id AND p.metric = c.metric AND p.dimension = c.dimension AND p.value = c.value
        ORDER BY p.seq DESC
        LIMIT 1
    ) released ON true
    WHERE released IS NULL OR (released.events, released.people) IS DISTINCT FROM (c.events, c.people)
    ORDER BY 1, 2, 3, 4;

    RETURN made;
END
$$;

-- Ingest writes the creators' audiences; erasure forgets a person's rows, bound to them by
-- row-level security as on the other ledgers (0016, 0017); no other role reads them.
GRANT SELECT, INSERT, UPDATE, DELETE ON creator_viewers TO gateway_ingest;
GRANT SELECT, DELETE ON creator_viewers TO gateway_eraser;
ALTER TABLE creator_viewers ENABLE ROW LEVEL SECURITY;
CREATE POLICY creator_viewers_ingest ON creator_viewers FOR ALL TO gateway_ingest USING (true) WITH CHECK (true);
CREATE POLICY creator_viewers_erased_rows ON creator_viewers FOR ALL TO gateway_eraser
    USING (actor_id = current_setting('gateway.actor_id', true));
