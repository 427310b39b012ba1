-- Stores one staged batch (ingest_staging), received at $1 (the writer's clock), in the caller's
-- transaction: keeps the events whose event_id is new (ingest_fresh) and appends them.
--
-- This runs before the batch takes the arrival lock (apply_arrival(), migration
-- 0011), so one batch is stored while the previous one is applied to the history. Two batches
-- racing on one event_id meet in event_ids' primary key: the later waits for
-- the earlier to commit and then skips the id. Ids are inserted in order, so
-- two batches never wait for each other both ways.
--
-- Whether a share is anonymous is decided here, once (migration 0018): its event says so, or its
-- sharer's share setting was on when it was made (when it was received, for one stamped ahead of
-- the clock). `anonymous` keeps the decision from then on, in `events` and in every arrival made of
-- it, live or held (gateway.store.replay): a replay, a backfill or a rebuild of a video's live
-- state reads it and never the setting again, so no later change moves the share.
WITH fresh_ids AS (
    INSERT INTO event_ids (event_id, occurred_at)
    SELECT event_id, occurred_at FROM ingest_staging ORDER BY event_id
    ON CONFLICT DO NOTHING
    RETURNING event_id
), fresh AS (
    INSERT INTO ingest_fresh
    SELECT s.event_id, s.type, s.occurred_at, s.video_id, s.creator_id, s.actor_id, s.channel, s.region,
           s.age_band, s.watch_ms, s.completed, s.text,
           CASE WHEN s.type = 'share'
                THEN coalesce(s.anonymous, false) OR anonymous_shares_at(s.actor_id, least(s.occurred_at, $1::timestamptz))
           END,
           s.duration_ms, s.sentiment
    FROM ingest_staging s JOIN fresh_ids USING (event_id)
    RETURNING *
)
INSERT INTO events (event_id, type, occurred_at, video_id, creator_id, actor_id, channel,
                    region, age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment)
SELECT event_id, type::event_type, occurred_at, video_id, creator_id, actor_id, channel::share_channel,
       region, age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment::comment_sentiment
FROM fresh;
