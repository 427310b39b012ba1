-- Erasure meets the ledger of viewers (migration 0015).
--
-- 0015 made video_viewers, which names a person, and gave gateway_private SELECT and DELETE on it,
-- the role 0003 meant to erase a principal's rows. Since 0016 erasure runs as gateway_eraser and
-- gateway_private reads a principal's own events and the decision log only: the privilege moves,
-- and the eraser is bound by row-level security to the person it erases, as on the other ledgers.

REVOKE ALL ON video_viewers FROM gateway_private;

GRANT SELECT, DELETE ON video_viewers TO gateway_eraser;

ALTER TABLE video_viewers ENABLE ROW LEVEL SECURITY;
CREATE POLICY video_viewers_ingest ON video_viewers FOR ALL TO gateway_ingest USING (true) WITH CHECK (true);
CREATE POLICY video_viewers_erased_rows ON video_viewers FOR ALL TO gateway_eraser
    USING (actor_id = current_setting('gateway.actor_id', true));

-- Erasure finds a person's rows by actor alone, under the arrival lock (as 0016's indexes on the
-- other ledgers): the primary key leads with the video.
CREATE INDEX video_viewers_actor_idx ON video_viewers (actor_id);
