-- Applies one staged batch (ingest_staging) in the caller's transaction:
-- keeps the events whose event_id is new, appends them, and updates every
-- rollup they change with one statement per rollup. Upserts are ordered by
-- key so that concurrent batches lock rows in the same order.

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

WITH new_pairs AS (
    INSERT INTO video_hourly_actors (video_id, hour, metric, actor_id)
    SELECT DISTINCT video_id, date_trunc('hour', occurred_at, 'UTC'),
           (CASE type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'u'
                      WHEN 'comment' THEN 'c' ELSE 's' END)::"char",
           actor_id
    FROM ingest_fresh
    WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING video_id, hour, metric
), new_actors AS (
    SELECT video_id, hour,
           count(*) FILTER (WHERE metric = 'v') AS viewers,
           count(*) FILTER (WHERE metric = 'l') AS likers,
           count(*) FILTER (WHERE metric = 'u') AS unlikers,
           count(*) FILTER (WHERE metric = 'c') AS commenters,
           count(*) FILTER (WHERE metric = 's') AS sharers
    FROM new_pairs
    GROUP BY video_id, hour
), counts AS (
    SELECT video_id, date_trunc('hour', occurred_at, 'UTC') AS hour,
           count(*) FILTER (WHERE type = 'view') AS views,
           coalesce(sum(watch_ms), 0) AS watch_ms,
           count(*) FILTER (WHERE completed) AS completed_views,
           count(*) FILTER (WHERE type = 'like') - count(*) FILTER (WHERE type = 'unlike') AS likes,
           count(*) FILTER (WHERE type = 'comment') AS comments,
           count(*) FILTER (WHERE type = 'share') AS shares
    FROM ingest_fresh
    WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
    GROUP BY 1, 2
)
INSERT INTO video_hourly AS r (video_id, hour, views, watch_ms, completed_views, likes, comments, shares,
                               viewers, likers, unlikers, commenters, sharers)
SELECT c.video_id, c.hour, c.views, c.watch_ms, c.completed_views, c.likes, c.comments, c.shares,
       coalesce(a.viewers, 0), coalesce(a.likers, 0), coalesce(a.unlikers, 0),
       coalesce(a.commenters, 0), coalesce(a.sharers, 0)
FROM counts c LEFT JOIN new_actors a USING (video_id, hour)
ORDER BY c.video_id, c.hour
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

WITH new_pairs AS (
    INSERT INTO video_hourly_channel_actors (video_id, hour, channel, actor_id)
    SELECT DISTINCT video_id, date_trunc('hour', occurred_at, 'UTC'), channel::share_channel, actor_id
    FROM ingest_fresh
    WHERE type = 'share'
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING video_id, hour, channel
), new_actors AS (
    SELECT video_id, hour, channel, count(*) AS sharers FROM new_pairs GROUP BY 1, 2, 3
), counts AS (
    SELECT video_id, date_trunc('hour', occurred_at, 'UTC') AS hour, channel::share_channel AS channel,
           count(*) AS shares
    FROM ingest_fresh
    WHERE type = 'share'
    GROUP BY 1, 2, 3
)
INSERT INTO video_hourly_channels AS r (video_id, hour, channel, shares, sharers)
SELECT c.video_id, c.hour, c.channel, c.shares, coalesce(a.sharers, 0)
FROM counts c LEFT JOIN new_actors a USING (video_id, hour, channel)
ORDER BY c.video_id, c.hour, c.channel
ON CONFLICT (video_id, hour, channel) DO UPDATE SET
    shares  = r.shares + excluded.shares,
    sharers = r.sharers + excluded.sharers;

WITH new_pairs AS (
    INSERT INTO video_channel_actors (video_id, channel, actor_id)
    SELECT DISTINCT video_id, channel::share_channel, actor_id
    FROM ingest_fresh
    WHERE type = 'share'
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING video_id, channel
), new_actors AS (
    SELECT video_id, channel, count(*) AS sharers FROM new_pairs GROUP BY 1, 2
), counts AS (
    SELECT video_id, channel::share_channel AS channel, count(*) AS shares
    FROM ingest_fresh
    WHERE type = 'share'
    GROUP BY 1, 2
)
INSERT INTO video_channels AS r (video_id, channel, shares, sharers)
SELECT c.video_id, c.channel, c.shares, coalesce(a.sharers, 0)
FROM counts c LEFT JOIN new_actors a USING (video_id, channel)
ORDER BY c.video_id, c.channel
ON CONFLICT (video_id, channel) DO UPDATE SET
    shares  = r.shares + excluded.shares,
    sharers = r.sharers + excluded.sharers;

WITH cells AS (
    SELECT f.video_id, d.dimension, d.value, (CASE f.type WHEN 'view' THEN 'v' ELSE 's' END)::"char" AS metric,
           f.actor_id
    FROM ingest_fresh f
    CROSS JOIN LATERAL (VALUES ('region', coalesce(f.region, 'unknown')),
                               ('age_band', coalesce(f.age_band, 'unknown'))) AS d (dimension, value)
    WHERE f.type IN ('view', 'share')
), new_pairs AS (
    INSERT INTO video_audience_actors (video_id, dimension, value, metric, actor_id)
    SELECT DISTINCT video_id, dimension, value, metric, actor_id FROM cells
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT DO NOTHING
    RETURNING video_id, dimension, value, metric
), new_actors AS (
    SELECT video_id, dimension, value,
           count(*) FILTER (WHERE metric = 'v') AS viewers,
           count(*) FILTER (WHERE metric = 's') AS sharers
    FROM new_pairs
    GROUP BY 1, 2, 3
), counts AS (
    SELECT video_id, dimension, value,
           count(*) FILTER (WHERE metric = 'v') AS views,
           count(*) FILTER (WHERE metric = 's') AS shares
    FROM cells
    GROUP BY 1, 2, 3
)
INSERT INTO video_audience AS r (video_id, dimension, value, views, viewers, shares, sharers)
SELECT c.video_id, c.dimension, c.value, c.views, coalesce(a.viewers, 0), c.shares, coalesce(a.sharers, 0)
FROM counts c LEFT JOIN new_actors a USING (video_id, dimension, value)
ORDER BY c.video_id, c.dimension, c.value
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
