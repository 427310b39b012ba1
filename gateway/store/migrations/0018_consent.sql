-- Sharers' consent (issue 14): two settings a user keeps for themselves under `me`, and what
-- the release history and one policy-gated field make of them.
--
--   consent_changes    the audit: every change of a setting, appended, never updated (no pool role
--                      may UPDATE it, and a trigger refuses even the owner); who (user_id), which
--                      setting, toward which creator, the new value, when, and the principal kind
--                      that made it. Erasure deletes a person's rows (user_id) and nothing else does.
--   consent_settings   the settings in force: the latest change per (user, setting, creator)
--
--   anonymous_shares   a share made while it is on counts in its video's share total and people,
--                      and in the channel breakdown's cell 'undisclosed' instead of its channel's:
--                      apply_arrival() below takes it as a share of undisclosed channel and unknown
--                      region and age band (the ledger keeps no channel for it). That cell counts
--                      people as every channel cell does, and is served and suppressed as they
--                      are (gateway.privacy.suppression). The setting that applies is the one
--                      in force when the share was made (its occurred_at; for an event stamped
--                      ahead of the clock, when it was received), read from this audit when
--                      ingest receives the share (store_batch.sql) and kept, decided, in its
--                      event's `anonymous`: every arrival made of the event, live, replayed,
--                      backfilled or rebuilt, reads that and never the setting again, so no change
--                      moves a share once received. A share whose event says `anonymous` is
--                      anonymous whatever the setting.
--   visible_to         (per creator) the user may be listed to that creator as a sharer of their
--                      videos: consented_sharers() below, which Video.consentedSharers reads when
--                      the policy enables it. Nothing else reads it.
--
-- Shares applied before this migration stay in the cells they were counted in: the event's
-- `anonymous` flag was stored but not read until now, and taking those shares out of cells already
-- released would change numbers already served.

CREATE TYPE consent_setting AS ENUM ('anonymous_shares', 'visible_to');

CREATE TABLE consent_changes (
    change_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL,
    setting    consent_setting  NOT NULL,
    creator_id text COLLATE "C",             -- visible_to only: the creator the user may be shown to
    value      boolean          NOT NULL,
    changed_at timestamptz      NOT NULL,    -- the gateway's clock, and after the user's previous change
    changed_by text             NOT NULL,    -- the kind of principal that made it ('user')
    CHECK ((setting = 'visible_to') = (creator_id IS NOT NULL)),
    CHECK (creator_id <> user_id)
);
-- A user's share setting as of a moment (every share ingested asks), and a user's settings.
CREATE INDEX consent_changes_user_idx ON consent_changes (user_id, setting, creator_id, changed_at, change_id);
-- Who may be shown to a creator (consented_sharers()).
CREATE INDEX consent_changes_creator_idx ON consent_changes (creator_id, user_id, changed_at, change_id)
    WHERE setting = 'visible_to';

CREATE FUNCTION refuse_consent_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_changes is append-only: record a new change instead'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER consent_changes_append_only BEFORE UPDATE ON consent_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_consent_rewrite();

-- security_invoker: whoever reads the view reads consent_changes under their own row-level security.
CREATE VIEW consent_settings WITH (security_invoker = true) AS
SELECT DISTINCT ON (user_id, setting, creator_id) user_id, setting, creator_id, value, changed_at
FROM consent_changes
ORDER BY user_id, setting, creator_id, changed_at DESC, change_id DESC;

-- Whether `sharer`'s share setting was on at `moment`: their latest change at or before it (off
-- when there is none). Ingest asks it once per share it receives (store_batch.sql).
CREATE FUNCTION anonymous_shares_at(sharer text, moment timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.value FROM consent_changes c
                     WHERE c.user_id = sharer AND c.setting = 'anonymous_shares' AND c.creator_id IS NULL
                       AND c.changed_at <= moment
                     ORDER BY c.changed_at DESC, c.change_id DESC
                     LIMIT 1), false)
$$;

-- The users shown as sharers of `shared_video` to `shown_to`, who must be its creator: those
-- whose visible_to consent toward the creator stands now, and who shared the video other than
-- anonymously (the ledger of people holds an anonymous share without its channel). Ids after
-- `after_user`, in order, at most `max_rows` (up to 100). The reader role may call it and still
-- reads no actor id of anyone else.
CREATE FUNCTION consented_sharers(shared_video text, shown_to text, after_user text, max_rows integer)
RETURNS TABLE (user_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.user_id::text
    FROM videos v
    JOIN consent_settings s ON s.setting = 'visible_to' AND s.creator_id = v.creator_id AND s.value
    WHERE v.video_id = shared_video AND v.creator_id = shown_to
      AND s.creator_id = shown_to
      AND s.user_id > coalesce(after_user, '')
      AND EXISTS (SELECT FROM video_people l
                  WHERE l.video_id = v.video_id AND l.actor_id = s.user_id AND l.metric = 's' AND l.channel IS NOT NULL)
    ORDER BY s.user_id
    LIMIT least(greatest(max_rows, 0), 100)
$$;

-- Row-level security: the private pool reads and appends the changes of the principal named by
-- the transaction-local gateway.actor_id only (as it reads events, migration 0004); unset, none.
-- Ingest reads every share setting, to apply each share as its sharer chose.
ALTER TABLE consent_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY consent_changes_own_rows ON consent_changes
    FOR ALL TO gateway_private
    USING (user_id = current_setting('gateway.actor_id', true))
    WITH CHECK (user_id = current_setting('gateway.actor_id', true));
CREATE POLICY consent_changes_ingest ON consent_changes
    FOR SELECT TO gateway_ingest
    USING (true);

-- No pool role may UPDATE the audit; DELETE is erasure's (gateway_private's, as on events).
GRANT SELECT, INSERT, DELETE ON consent_changes TO gateway_private;
GRANT SELECT ON consent_settings TO gateway_private;
GRANT SELECT ON consent_changes TO gateway_ingest;
REVOKE ALL ON FUNCTION anonymous_shares_at(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION anonymous_shares_at(text, timestamptz) TO gateway_ingest;
REVOKE ALL ON FUNCTION consented_sharers(text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consented_sharers(text, text, text, integer) TO gateway_reader;

-- As in migration 0015, but a share that is anonymous (its `anonymous`, decided when ingest
-- received it: the event said so, or its sharer's setting was on when they made it) enters the
-- arrival as a share of unknown region and age band and of no channel: it counts in the video's
-- share total and people (and makes its sharer known to the ledger), and in the channel cell
-- 'undisclosed', with the people in it, as a share in a channel counts in that channel's cell.
-- The ledger keeps no channel for it (NULL: undisclosed).
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
               CASE WHEN anonymous_share THEN 'unknown' ELSE coalesce(region, 'unknown') END AS region,
               CASE WHEN anonymous_share THEN 'unknown' ELSE coalesce(age_band, 'unknown') END AS age_band,
               CASE WHEN anonymous_share THEN NULL ELSE channel::share_channel END AS channel,
               sum(CASE type WHEN 'unlike' THEN -1 ELSE 1 END) AS events,
               coalesce(sum(watch_ms), 0) AS watch_ms,
               count(*) FILTER (WHERE completed) AS completed
        FROM (SELECT f.*, f.type = 'share' AND coalesce(f.anonymous, false) AS anonymous_share
              FROM ingest_fresh f) fresh
        WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
        GROUP BY 1, 2, 3, 4, 5, 6
    ) c
    LEFT JOIN LATERAL (
        SELECT true AS any_row,
               bool_or(l.channel IS NOT DISTINCT FROM c.channel) AS channel,
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

    -- Each arrival row lands in one cell per dimension its metric is broken down by (an anonymous
    -- share in the channel 'undisclosed'); its views in the completion cells their `completed` says
    -- (a viewer is new to each the first time).
    INSERT INTO live_cells AS l (subject_id, metric, dimension, value, events, people, changed_arrival)
    SELECT c.video_id, c.metric, d.dimension, d.value, sum(d.events),
           count(DISTINCT c.actor_id) FILTER (WHERE d.new_person), arrival
    FROM arrival_cells c
    LEFT JOIN arrival_viewers w ON w.video_id = c.video_id AND w.actor_id = c.actor_id AND c.metric = 'v'
    CROSS JOIN LATERAL (VALUES ('c'::"char", coalesce(c.channel::text, 'undisclosed'), c.events, c.new_in_channel),
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
