-- Stores one staged batch (ingest_staging) in the caller's transaction:
-- keeps the events whose event_id is new (ingest_fresh) and appends them.
--
-- This runs before the batch takes the arrival lock (apply_arrival(), migration
-- 0011), so one batch is stored while the previous one is applied to the history. Two batches
-- racing on one event_id meet in event_ids' primary key: the later waits for
-- the earlier to commit and then skips the id. Ids are inserted in order, so
-- two batches never wait for each other both ways.
WITH fresh_ids AS (
    INSERT INTO event_ids (event_id, occurred_at)
    SELECT event_id, occurred_at FROM ingest_staging ORDER BY event_id
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO ingest_fresh
SELECT s.* FROM ingest_staging s JOIN fresh_ids USING (event_id);

INSERT INTO events (event_id, type, occurred_at, video_id, creator_id, actor_id, channel,
                    region, age_band, watch_ms, completed, text, anonymous)
SELECT event_id, type::event_type, occurred_at, video_id, creator_id, actor_id, channel::share_channel,
       region, age_band, watch_ms, completed, text, anonymous
FROM ingest_fresh;
