-- Watch time and completion, counted per viewer.
--
-- A video's releases carried the plain sum of its views' watch time, and its completed views as a
-- cell of no people. So one viewer who left a video playing for ten hours moved the creator's
-- average watch time by hours, and one completed view among five viewers made a completion rate
-- of 0.2 where it would have been 0: one person read off from a release of k or more. Now the
-- history knows each viewer of a video once:
--
--   video_viewers      the ledger: each viewer's watch time on the video, whether a view of theirs
--                      was watched to the end, whether one was not (actor ids: never read to answer)
--   watch_capped_ms    (live_totals, releases) the sum over viewers of each one's watch time up to
--                      watch_cap_ms(): one person adds at most the cap, however long they watched
--   releases.watch_cap_ms  the cap a release's sum was taken under
--   completion cells   'completed' and 'not_completed' (dimension 'w' of views), each counting the
--                      views and the distinct viewers with such a view, so that a completion rate
--                      is served only when k or more people are on each side of it
--                      (gateway.privacy.disclosure)
--
-- Releases made before this migration hold no capped sum (NULL) and a completed cell of no
-- people: neither their average watch time nor their completion rate is served. The ledger and
-- the live state are built here from the events applied so far, so the next release of each
-- video carries both.

-- One person's watch time on one video counts up to three minutes: the longest a video of this
-- short-video platform runs (the demo's run from 5 s to 3 min), so a viewer who watched a video
-- through counts whole, and one who left it playing, or watched it again and again, counts no
-- more than that. The gateway serves the capped sum in steps of k viewers at the cap
-- (gateway.privacy.watch_time), so the cap is also what one person can weigh in a step.
CREATE FUNCTION watch_cap_ms() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 180000';

CREATE TABLE video_viewers (
    video_id      text COLLATE "C" NOT NULL,
    actor_id      text COLLATE "C" NOT NULL,
    watch_ms      bigint           NOT NULL,  -- all they watched of it, uncapped
    completed     boolean          NOT NULL,  -- a view of theirs was watched to the end
    not_completed boolean          NOT NULL,  -- a view of theirs was not
    PRIMARY KEY (video_id, actor_id)
) WITH (fillfactor = 70);

-- The viewers of what has been applied (events held for a replay are applied later, through
-- apply_arrival below), and what they make of the live state.
INSERT INTO video_viewers (video_id, actor_id, watch_ms, completed, not_completed)
SELECT e.video_id, e.actor_id, sum(e.watch_ms), bool_or(e.completed IS TRUE), bool_or(e.completed IS NOT TRUE)
FROM events e
WHERE e.type = 'view' AND NOT EXISTS (SELECT FROM arrivals_pending p WHERE p.event_id = e.event_id)
GROUP BY 1, 2
ORDER BY 1, 2;

ALTER TABLE live_totals DROP COLUMN watch_ms, ADD COLUMN watch_capped_ms bigint NOT NULL DEFAULT 0;
UPDATE live_totals t
SET watch_capped_ms = v.capped
FROM (SELECT video_id, sum(least(watch_ms, watch_cap_ms())) AS capped FROM video_viewers GROUP BY 1) v
WHERE t.subject_id = v.video_id AND t.metric = 'v';

-- The completion cells afresh, changed at an arrival after every release so far: the next
-- release of each video stores them.
DELETE FROM live_cells WHERE metric = 'v' AND dimension = 'w';
WITH arrival AS (SELECT nextval('arrivals') AS number)
INSERT INTO live_cells (subject_id, metric, dimension, value, events, people, changed_arrival)
SELECT e.video_id, 'v', 'w', CASE WHEN e.completed THEN 'completed' ELSE 'not_completed' END,
       count(*), count(DISTINCT e.actor_id), (SELECT number FROM arrival)
FROM events e
WHERE e.type = 'view' AND NOT EXISTS (SELECT FROM arrivals_pending p WHERE p.event_id = e.event_id)
GROUP BY 1, 4
ORDER BY 1, 4;

-- The unbounded sum leaves the history: the reader role cannot read it any more.
ALTER TABLE releases
    DROP COLUMN watch_ms,
    ADD COLUMN watch_capped_ms bigint,
    ADD COLUMN watch_cap_ms    integer,
    ADD CHECK ((watch_capped_ms IS NULL) = (watch_cap_ms IS NULL));

CREATE OR REPLACE FUNCTION prepare_arrivals() RETURNS void
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
    -- Each viewer of the arrival (per video), beside what the ledger knew of them before it.
    CREATE TEMP TABLE IF NOT EXISTS arrival_viewers (
        video_id text COLLATE "C", actor_id text COLLATE "C", watch_ms bigint, completed boolean,
        not_completed boolean, watched_before bigint, completed_before boolean, not_completed_before boolean
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

-- As in migration 0011, but a view's watch time joins the capped sum through its viewer's
-- ledger row, and a view lands in the completion cell its `completed` says, counting its viewer
-- once in each.
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
        INSERT INTO arrivals_pending
        SELECT held.*, arrived_at, true FROM held;
    END IF;
    DELETE FROM arrival_cells;
    DELETE FROM arrival_viewers;
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

    INSERT INTO arrival_viewers
    SELECT a.video_id, a.actor_id, a.watch_ms, a.completed, a.not_completed,
           coalesce(l.watch_ms, 0), coalesce(l.completed, false), coalesce(l.not_completed, false)
    FROM (SELECT video_id, actor_id, sum(watch_ms) AS watch_ms,
                 bool_or(completed > 0) AS completed, bool_or(events > completed) AS not_completed
          FROM arrival_cells
          WHERE metric = 'v'
          GROUP BY 1, 2) a
    LEFT JOIN video_viewers l ON l.video_id = a.video_id AND l.actor_id = a.actor_id;

    INSERT INTO video_viewers AS l (video_id, actor_id, watch_ms, completed, not_completed)
    SELECT video_id, actor_id, watch_ms, completed, not_completed
    FROM arrival_viewers
    ORDER BY 1, 2
    ON CONFLICT (video_id, actor_id) DO UPDATE SET
        watch_ms      = l.watch_ms + excluded.watch_ms,
        completed     = l.completed OR excluded.completed,
        not_completed = l.not_completed OR excluded.not_completed;

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

    -- Each arrival row lands in one cell per dimension its metric is broken down by; its views in
    -- the completion cells their `completed` says (a viewer is new to each the first time).
    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT c.video_id, c.metric, d.dimension, d.value, sum(d.events),
           count(DISTINCT c.actor_id) FILTER (WHERE d.new_person), arrival
    FROM arrival_cells c
    LEFT JOIN arrival_viewers w ON w.video_id = c.video_id AND w.actor_id = c.actor_id AND c.metric = 'v'
    CROSS JOIN LATERAL (VALUES ('c'::"char", c.channel::text, c.events, c.new_in_channel),
                               ('r', c.region, c.events, c.new_in_region),
                               ('a', c.age_band, c.events, c.new_in_age_band),
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

    INSERT INTO release_cells (subject_id, metric, dimension, value, seq, events, people)
    SELECT c.subject_id, c.metric, c.dimension, c.value, r.seq, c.events, c.people
    FROM arrival_releases r
    JOIN live_cells c ON c.subject_id = r.subject_id AND c.metric = r.metric AND c.changed_arrival > r.prev_arrival
    ORDER BY 1, 2, 3, 4;

    RETURN made;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON video_viewers TO gateway_ingest;
GRANT SELECT, DELETE ON video_viewers TO gateway_private;
