-- A release stores a row for each breakdown cell whose values changed since the subject's last
-- release, and only those. apply_arrival used to store every cell marked changed since then, and
-- an erasure that takes an unreleased person out of a cell leaves its mark: the next release then
-- kept a row with the cell's old values, which a store that never saw the person would not have
-- (a red team found the erased only critic's 'negative' comment cell so). No served value changes:
-- readers take each cell's latest row, and the row left out would have repeated it. Otherwise as
-- in 0023.

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
