-- Rollups: every aggregate the API serves is read from these, never from
-- events. Each cell carries the count of DISTINCT actors behind it, which is
-- what a k-threshold needs. Buckets are UTC hours and days.
--
-- Cells are keyed by video_id first so that they distribute by video_id
-- (Citus) without changing queries.

CREATE TABLE videos (
    video_id     text PRIMARY KEY,
    creator_id   text NOT NULL,
    published_at timestamptz
);
CREATE INDEX videos_creator_idx ON videos (creator_id, published_at);

CREATE TABLE video_hourly (
    video_id        text        NOT NULL,
    hour            timestamptz NOT NULL,
    views           bigint      NOT NULL DEFAULT 0,
    watch_ms        bigint      NOT NULL DEFAULT 0,
    completed_views bigint      NOT NULL DEFAULT 0,
    likes           bigint      NOT NULL DEFAULT 0,  -- likes net of unlikes
    comments        bigint      NOT NULL DEFAULT 0,
    shares          bigint      NOT NULL DEFAULT 0,
    viewers         bigint      NOT NULL DEFAULT 0,  -- distinct actors of views
    likers          bigint      NOT NULL DEFAULT 0,  -- distinct actors of likes
    unlikers        bigint      NOT NULL DEFAULT 0,  -- distinct actors of unlikes
    commenters      bigint      NOT NULL DEFAULT 0,
    sharers         bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, hour)
);

CREATE TABLE video_hourly_channels (
    video_id text          NOT NULL,
    hour     timestamptz   NOT NULL,
    channel  share_channel NOT NULL,
    shares   bigint        NOT NULL DEFAULT 0,
    sharers  bigint        NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, hour, channel)
);

CREATE TABLE video_channels (
    video_id text          NOT NULL,
    channel  share_channel NOT NULL,
    shares   bigint        NOT NULL DEFAULT 0,
    sharers  bigint        NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, channel)
);

-- dimension is 'region' or 'age_band'; an event without one counts as 'unknown'.
CREATE TABLE video_audience (
    video_id  text   NOT NULL,
    dimension text   NOT NULL CHECK (dimension IN ('region', 'age_band')),
    value     text   NOT NULL,
    views     bigint NOT NULL DEFAULT 0,
    viewers   bigint NOT NULL DEFAULT 0,
    shares    bigint NOT NULL DEFAULT 0,
    sharers   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, dimension, value)
);

CREATE TABLE creator_daily (
    creator_id  text   NOT NULL,
    day         date   NOT NULL,
    follows     bigint NOT NULL DEFAULT 0,
    unfollows   bigint NOT NULL DEFAULT 0,
    followers   bigint NOT NULL DEFAULT 0,  -- distinct actors of follows
    unfollowers bigint NOT NULL DEFAULT 0,  -- distinct actors of unfollows
    PRIMARY KEY (creator_id, day)
);

-- Distinct-actor ledgers: one row per (cell, actor), so that each rollup's
-- distinct count is exact. They hold actor ids and live beside the raw
-- events: the reader role has no privilege on them.
-- metric: 'v' view, 'l' like, 'u' unlike, 'c' comment, 's' share.

CREATE TABLE video_hourly_actors (
    video_id text        NOT NULL,
    hour     timestamptz NOT NULL,
    metric   "char"      NOT NULL,
    actor_id text        NOT NULL,
    PRIMARY KEY (video_id, hour, metric, actor_id)
);

CREATE TABLE video_hourly_channel_actors (
    video_id text          NOT NULL,
    hour     timestamptz   NOT NULL,
    channel  share_channel NOT NULL,
    actor_id text          NOT NULL,
    PRIMARY KEY (video_id, hour, channel, actor_id)
);

CREATE TABLE video_channel_actors (
    video_id text          NOT NULL,
    channel  share_channel NOT NULL,
    actor_id text          NOT NULL,
    PRIMARY KEY (video_id, channel, actor_id)
);

CREATE TABLE video_audience_actors (
    video_id  text   NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    metric    "char" NOT NULL,
    actor_id  text   NOT NULL,
    PRIMARY KEY (video_id, dimension, value, metric, actor_id)
);

CREATE TABLE creator_daily_actors (
    creator_id text   NOT NULL,
    day        date   NOT NULL,
    metric     "char" NOT NULL,  -- 'f' follow, 'u' unfollow
    actor_id   text   NOT NULL,
    PRIMARY KEY (creator_id, day, metric, actor_id)
);
