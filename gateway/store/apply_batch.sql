-- Applies one stored batch (ingest_fresh, see store_batch.sql) in the
-- caller's transaction: updates every rollup its events change, with one
-- statement per rollup.
--
-- Batches are applied one at a time (a transaction-scoped advisory lock):
-- whether an actor is new to a cell is read from the committed ledger, so a
-- concurrent batch must not be half-way. Rollup rows of popular videos would
-- serialize concurrent batches anyway; staging and storing still run in parallel.

SELECT pg_advisory_xact_lock(7310151952298631524);

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

-- One row per (video, actor, metric, hour, region, age band, channel) of the
-- batch, with its events, watch time and completed views, and flags saying
-- which of its cells the actor had no row in before this batch (one index scan
-- of the ledger). Every video rollup below is one aggregate over these rows:
-- counts are sums of `events`, distinct actors are the DISTINCT actors of the
-- flagged rows (an actor may have several rows for one cell).
INSERT INTO ingest_cells
SELECT c.video_id, c.actor_id, c.metric, c.hour, c.region, c.age_band, c.channel,
       c.events, c.watch_ms, c.completed_views,
       NOT coalesce(seen.hour, false),
       NOT coalesce(seen.hour_channel, false),
       NOT coalesce(seen.channel, false),
       NOT coalesce(seen.region, false),
       NOT coalesce(seen.age_band, false),
       coalesce(seen.cell, false)
FROM (
    SELECT video_id, actor_id,
           (CASE type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'u'
                      WHEN 'comment' THEN 'c' ELSE 's' END)::"char" AS metric,
           date_trunc('hour', occurred_at, 'UTC') AS hour,
           coalesce(region, 'unknown') AS region,
           coalesce(age_band, 'unknown') AS age_band,
           channel::share_channel AS channel,
           count(*) AS events,
           coalesce(sum(watch_ms), 0) AS watch_ms,
           count(*) FILTER (WHERE completed) AS completed_views
    FROM ingest_fresh
    WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
    GROUP BY 1, 2, 3, 4, 5, 6, 7
) c
LEFT JOIN LATERAL (
    SELECT bool_or(l.hour = c.hour) AS hour,
           bool_or(l.hour = c.hour AND l.channel = c.channel) AS hour_channel,
           bool_or(l.channel = c.channel) AS channel,
           bool_or(l.region = c.region) AS region,
           bool_or(l.age_band = c.age_band) AS age_band,
           bool_or(l.hour = c.hour AND l.region = c.region AND l.age_band = c.age_band
                   AND l.channel IS NOT DISTINCT FROM c.channel) AS cell
    FROM video_cell_actors l
    WHERE l.video_id = c.video_id AND l.actor_id = c.actor_id AND l.metric = c.metric
) seen ON true;

INSERT INTO video_cell_actors (video_id, actor_id, metric, hour, region, age_band, channel)
SELECT video_id, actor_id, metric, hour, region, age_band, channel
FROM ingest_cells
WHERE NOT known
ORDER BY 1, 2, 3;

INSERT INTO video_hourly AS r (video_id, hour, views, watch_ms, completed_views, likes, comments, shares,
                               viewers, likers, unlikers, commenters, sharers)
SELECT video_id, hour,
       coalesce(sum(events) FILTER (WHERE metric = 'v'), 0),
       sum(watch_ms),
       sum(completed_views),
       coalesce(sum(events) FILTER (WHERE metric = 'l'), 0) - coalesce(sum(events) FILTER (WHERE metric = 'u'), 0),
       coalesce(sum(events) FILTER (WHERE metric = 'c'), 0),
       coalesce(sum(events) FILTER (WHERE metric = 's'), 0),
       count(DISTINCT actor_id) FILTER (WHERE metric = 'v' AND new_in_hour),
       count(DISTINCT actor_id) FILTER (WHERE metric = 'l' AND new_in_hour),
       count(DISTINCT actor_id) FILTER (WHERE metric = 'u' AND new_in_hour),
       count(DISTINCT actor_id) FILTER (WHERE metric = 'c' AND new_in_hour),
       count(DISTINCT actor_id) FILTER (WHERE metric = 's' AND new_in_hour)
FROM ingest_cells
GROUP BY video_id, hour
ORDER BY video_id, hour
ON CONFLICT (video_id, hour) DO UPDATE SET
    views           = r.views + excluded.views,
    watch_ms        = r.watch_ms + excluded.watch_ms,
    completed_views = r.completed_views + excluded.completed_views,
    likes           = r.likes + excluded.likes,
    comments        = r.comments + excluded.comments,
    shares          = r.shares + excluded.shares,
    viewers         = r.viewers + excluded.viewers,
    likers          = r.likers + excluded.likers,
    unlikers        = r.unlikers + excluded.unlikers,
    commenters      = r.commenters + excluded.commenters,
    sharers         = r.sharers + excluded.sharers;

INSERT INTO video_hourly_channels AS r (video_id, hour, channel, shares, sharers)
SELECT video_id, hour, channel, sum(events), count(DISTINCT actor_id) FILTER (WHERE new_in_hour_channel)
FROM ingest_cells
WHERE metric = 's'
GROUP BY video_id, hour, channel
ORDER BY video_id, hour, channel
ON CONFLICT (video_id, hour, channel) DO UPDATE SET
    shares  = r.shares + excluded.shares,
    sharers = r.sharers + excluded.sharers;

INSERT INTO video_channels AS r (video_id, channel, shares, sharers)
SELECT video_id, channel, sum(events), count(DISTINCT actor_id) FILTER (WHERE new_in_channel)
FROM ingest_cells
WHERE metric = 's'
GROUP BY video_id, channel
ORDER BY video_id, channel
ON CONFLICT (video_id, channel) DO UPDATE SET
    shares  = r.shares + excluded.shares,
    sharers = r.sharers + excluded.sharers;

INSERT INTO video_audience AS r (video_id, dimension, value, views, viewers, shares, sharers)
SELECT c.video_id, d.dimension, d.value,
       coalesce(sum(c.events) FILTER (WHERE c.metric = 'v'), 0),
       count(DISTINCT c.actor_id) FILTER (WHERE c.metric = 'v' AND d.new_actor),
       coalesce(sum(c.events) FILTER (WHERE c.metric = 's'), 0),
       count(DISTINCT c.actor_id) FILTER (WHERE c.metric = 's' AND d.new_actor)
FROM ingest_cells c
CROSS JOIN LATERAL (VALUES ('region', c.region, c.new_in_region),
                           ('age_band', c.age_band, c.new_in_age_band)) AS d (dimension, value, new_actor)
WHERE c.metric IN ('v', 's')
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (video_id, dimension, value) DO UPDATE SET
    views   = r.views + excluded.views,
    viewers = r.viewers + excluded.viewers,
    shares  = r.shares + excluded.shares,
    sharers = r.sharers + excluded.sharers;

WITH new_pairs AS (
    INSERT INTO creator_daily_actors (creator_id, day, metric, actor_id)
    SELECT DISTINCT creator_id, (occurred_at AT TIME ZONE 'UTC')::date,
           (CASE type WHEN 'follow' THEN 'f' ELSE 'u' END)::"char", actor_id
    FROM ingest_fresh
    WHERE type IN ('follow', 'unfollow')
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING creator_id, day, metric
), new_actors AS (
    SELECT creator_id, day,
           count(*) FILTER (WHERE metric = 'f') AS followers,
           count(*) FILTER (WHERE metric = 'u') AS unfollowers
    FROM new_pairs
    GROUP BY 1, 2
), counts AS (
    SELECT creator_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE type = 'follow') AS follows,
           count(*) FILTER (WHERE type = 'unfollow') AS unfollows
    FROM ingest_fresh
    WHERE type IN ('follow', 'unfollow')
    GROUP BY 1, 2
)
INSERT INTO creator_daily AS r (creator_id, day, follows, unfollows, followers, unfollowers)
SELECT c.creator_id, c.day, c.follows, c.unfollows, coalesce(a.followers, 0), coalesce(a.unfollowers, 0)
FROM counts c LEFT JOIN new_actors a USING (creator_id, day)
ORDER BY c.creator_id, c.day
ON CONFLICT (creator_id, day) DO UPDATE SET
    follows     = r.follows + excluded.follows,
    unfollows   = r.unfollows + excluded.unfollows,
    followers   = r.followers + excluded.followers,
    unfollowers = r.unfollowers + excluded.unfollowers;
