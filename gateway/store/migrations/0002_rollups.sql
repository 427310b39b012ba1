-- Rollups: every aggregate the API serves is read from these, never from
-- events. Each cell carries the count of DISTINCT actors behind it, which is
-- what a k-threshold needs. Buckets are UTC hours and days.
--
-- Cells are keyed by video_id first so that they distribute by video_id
-- (Citus) without changing queries. Rollup rows are updated in place by every
-- batch; a fillfactor below 100 leaves room for HOT updates, which skip the
-- index.

CREATE TABLE videos (
    video_id     text COLLATE "C" PRIMARY KEY,
    creator_id   text COLLATE "C"             NOT NULL,
    published_at timestamptz
);
CREATE INDEX videos_creator_idx ON videos (creator_id, published_at);

CREATE TABLE video_hourly (
    video_id        text COLLATE "C" NOT NULL,
    hour            timestamptz      NOT NULL,
    views           bigint           NOT NULL DEFAULT 0,
    watch_ms        bigint           NOT NULL DEFAULT 0,
    completed_views bigint           NOT NULL DEFAULT 0,
    likes           bigint           NOT NULL DEFAULT 0,  -- likes net of unlikes
    comments        bigint           NOT NULL DEFAULT 0,
    shares          bigint           NOT NULL DEFAULT 0,
    viewers         bigint           NOT NULL DEFAULT 0,  -- distinct actors of views
    likers          bigint           NOT NULL DEFAULT 0,  -- distinct actors of likes
    unlikers        bigint           NOT NULL DEFAULT 0,  -- distinct actors of unlikes
    commenters      bigint           NOT NULL DEFAULT 0,
    sharers         bigint           NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, hour)
) WITH (fillfactor = 70);

CREATE TABLE video_hourly_channels (
    video_id text COLLATE "C" NOT NULL,
    hour     timestamptz      NOT NULL,
    channel  share_channel    NOT NULL,
    shares   bigint           NOT NULL DEFAULT 0,
    sharers  bigint           NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, hour, channel)
) WITH (fillfactor = 70);

CREATE TABLE video_channels (
    video_id text COLLATE "C" NOT NULL,
    channel  share_channel    NOT NULL,
    shares   bigint           NOT NULL DEFAULT 0,
    sharers  bigint           NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, channel)
) WITH (fillfactor = 70);

-- dimension is 'region' or 'age_band'; an event without one counts as 'unknown'.
CREATE TABLE video_audience (
    video_id  text COLLATE "C" NOT NULL,
    dimension text COLLATE "C" NOT NULL CHECK (dimension IN ('region', 'age_band')),
    value     text COLLATE "C" NOT NULL,
    views     bigint           NOT NULL DEFAULT 0,
    viewers   bigint           NOT NULL DEFAULT 0,
    shares    bigint           NOT NULL DEFAULT 0,
    sharers   bigint           NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, dimension, value)
) WITH (fillfactor = 70);

CREATE TABLE creator_daily (
    creator_id  text COLLATE "C" NOT NULL,
    day         date             NOT NULL,
    follows     bigint           NOT NULL DEFAULT 0,
    unfollows   bigint           NOT NULL DEFAULT 0,
    followers   bigint           NOT NULL DEFAULT 0,  -- distinct actors of follows
    unfollowers bigint           NOT NULL DEFAULT 0,  -- distinct actors of unfollows
    PRIMARY KEY (creator_id, day)
) WITH (fillfactor = 70);

-- Distinct-actor ledgers: they hold actor ids and live beside the raw
-- events; the reader role has no privilege on them.
--
-- video_cell_actors has one row per distinct (video, actor, metric, hour,
-- region, age band, channel) seen. One index range scan on its leading
-- columns (video_id, actor_id, metric) tells whether an actor is new to any
-- of the cells an event lands in (an hour, a channel in an hour, a channel,
-- a region, an age band), so each rollup's distinct count stays exact.
-- metric: 'v' view, 'l' like, 'u' unlike, 'c' comment, 's' share.
CREATE TABLE video_cell_actors (
    video_id text COLLATE "C" NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    metric   "char"           NOT NULL,
    hour     timestamptz      NOT NULL,
    region   text COLLATE "C" NOT NULL,  -- 'unknown' when the event had none
    age_band text COLLATE "C" NOT NULL,  -- 'unknown' when the event had none
    channel  share_channel    -- shares only
);
-- Rows are unique by construction (ingest adds a row only when the ledger
-- lacks it, one batch at a time); the index serves the per-actor lookup.
CREATE INDEX video_cell_actors_lookup_idx ON video_cell_actors (video_id, actor_id, metric);

CREATE TABLE creator_daily_actors (
    creator_id text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    metric     "char"           NOT NULL,  -- 'f' follow, 'u' unfollow
    actor_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (creator_id, day, metric, actor_id)
);
