"""Read queries over the rollups (reader pool) and over a principal's own rows (private pool).

Every statement is a constant; values travel as parameters. Where a rollup
column depends on the question (views or shares), the statement is chosen
from a fixed table, never formatted from input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import asyncpg

__all__ = [
    "Bucket",
    "Granularity",
    "StatsSeries",
    "VideoRow",
    "VideoStatsRow",
    "audience",
    "channels_released",
    "creator_exists",
    "creator_video_rows",
    "creator_videos",
    "follower_growth",
    "my_follows",
    "my_likes",
    "my_shares",
    "stats_fingerprints",
    "stats_series",
    "timeline",
    "videos_by_id",
]


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class VideoRow:
    video_id: str
    creator_id: str
    published_at: datetime | None


@dataclass(frozen=True)
class VideoStatsRow:
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    watch_ms: int = 0
    completed_views: int = 0


@dataclass(frozen=True)
class Bucket:
    """One cell of a breakdown or a time series; `actors` is its count of distinct actors."""

    key: str | datetime | date
    count: int
    actors: int


async def videos_by_id(conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, VideoRow]:
    rows = await conn.fetch(
        "SELECT video_id, creator_id, published_at FROM videos WHERE video_id = ANY($1::text[])", list(video_ids)
    )
    return {row["video_id"]: VideoRow(*row) for row in rows}


# A video's totals are released from its closed floor buckets in steps of k new people
# (gateway.privacy.release). A bucket that alone brings k new people for a metric completes a
# step whatever came before it, so everything up to the last such bucket (the metric's mark) is
# released: Postgres sums that prefix, and only the buckets after the earliest mark (a few,
# for a busy video) come back to be walked.
_STATS_SERIES = """
WITH ids AS (
    SELECT video_id FROM videos WHERE video_id = ANY($1::text[])
), counts AS (
    SELECT video_id, {bucket} AS bucket,
           {sum}(views){cast} AS views, {sum}(watch_ms){cast} AS watch_ms, {sum}(completed_views){cast} AS completed,
           {sum}(likes){cast} AS likes, {sum}(comments){cast} AS comments, {sum}(shares){cast} AS shares
    FROM video_hourly
    WHERE video_id IN (SELECT video_id FROM ids) AND hour < $3
    {group}
), units AS (
    -- People new to the video per bucket (migration 0009): a step of the release needs k new people.
    SELECT i.video_id, g.name, a.bucket, a.newcomers
    FROM ids i
    CROSS JOIN (VALUES ('v', '{{v}}'::"char"[]), ('l', '{{l,u}}'), ('c', '{{c}}'), ('s', '{{s}}')) AS g (name, metrics)
    CROSS JOIN LATERAL actor_units(i.video_id, g.metrics, $2, $3) a
), b AS MATERIALIZED (
    SELECT c.video_id, c.bucket, c.views, c.watch_ms, c.completed, coalesce(uv.newcomers, 0) AS viewers,
           c.likes, coalesce(ul.newcomers, 0) AS like_units, c.comments, coalesce(uc.newcomers, 0) AS commenters,
           c.shares, coalesce(us.newcomers, 0) AS sharers
    FROM counts c
    LEFT JOIN units uv ON uv.video_id = c.video_id AND uv.bucket = c.bucket AND uv.name = 'v'
    LEFT JOIN units ul ON ul.video_id = c.video_id AND ul.bucket = c.bucket AND ul.name = 'l'
    LEFT JOIN units uc ON uc.video_id = c.video_id AND uc.bucket = c.bucket AND uc.name = 'c'
    LEFT JOIN units us ON us.video_id = c.video_id AND us.bucket = c.bucket AND us.name = 's'
), m AS (
    SELECT video_id,
           max(bucket) FILTER (WHERE viewers >= $4) AS views_mark,
           max(bucket) FILTER (WHERE like_units >= $4) AS likes_mark,
           max(bucket) FILTER (WHERE commenters >= $4) AS comments_mark,
           max(bucket) FILTER (WHERE sharers >= $4) AS shares_mark
    FROM b GROUP BY video_id
)
SELECT m.video_id, m.views_mark, m.likes_mark, m.comments_mark, m.shares_mark,
       coalesce(sum(b.views) FILTER (WHERE b.bucket <= m.views_mark), 0)::bigint,
       coalesce(sum(b.watch_ms) FILTER (WHERE b.bucket <= m.views_mark), 0)::bigint,
       coalesce(sum(b.completed) FILTER (WHERE b.bucket <= m.views_mark), 0)::bigint,
       coalesce(sum(b.likes) FILTER (WHERE b.bucket <= m.likes_mark), 0)::bigint,
       coalesce(sum(b.comments) FILTER (WHERE b.bucket <= m.comments_mark), 0)::bigint,
       coalesce(sum(b.shares) FILTER (WHERE b.bucket <= m.shares_mark), 0)::bigint,
       array_agg(b.bucket ORDER BY b.bucket) FILTER (WHERE t.tail),
       array_agg(ARRAY[b.views, b.watch_ms, b.completed, b.viewers, b.likes, b.like_units,
                       b.comments, b.commenters, b.shares, b.sharers] ORDER BY b.bucket) FILTER (WHERE t.tail)
FROM m JOIN b USING (video_id)
CROSS JOIN LATERAL (
    SELECT m.views_mark IS NULL OR m.likes_mark IS NULL OR m.comments_mark IS NULL OR m.shares_mark IS NULL
           OR b.bucket > LEAST(m.views_mark, m.likes_mark, m.comments_mark, m.shares_mark) AS tail
) t
GROUP BY m.video_id, m.views_mark, m.likes_mark, m.comments_mark, m.shares_mark
"""
# video_hourly has one row per hour already: an HOUR floor needs no grouping.
_SHAPES = {
    True: {"bucket": "hour", "sum": "", "cast": "", "group": ""},
    False: {"bucket": "date_trunc($2, hour, 'UTC')", "sum": "sum", "cast": "::bigint", "group": "GROUP BY 1, 2"},
}
STATS_SERIES_STATEMENTS = {hourly: _STATS_SERIES.format(**_SHAPES[hourly]) for hourly in (True, False)}


@dataclass(frozen=True)
class StatsSeries:
    """What a video's released totals are worked out from (see `_STATS_SERIES`).

    marks   per metric (views, likes, comments, shares): the last bucket that alone holds k units, or None
    prefix  views, watch_ms, completed views (through the views mark), likes, comments, shares (each through its mark)
    tail    the buckets after the earliest mark, oldest first: (bucket, views, watch_ms, completed, viewers,
            likes, like units, comments, commenters, shares, sharers)
    """

    marks: tuple[datetime | None, datetime | None, datetime | None, datetime | None]
    prefix: tuple[int, int, int, int, int, int]
    tail: list[tuple[Any, ...]]


def _series(rows: list[asyncpg.Record]) -> dict[str, StatsSeries]:
    found = {}
    for row in rows:
        buckets, columns = row[11] or [], row[12] or []
        found[row[0]] = StatsSeries(
            marks=(row[1], row[2], row[3], row[4]),
            prefix=(row[5], row[6], row[7], row[8], row[9], row[10]),
            tail=[(bucket, *values) for bucket, values in zip(buckets, columns, strict=True)],
        )
    return found


async def stats_series(
    conn: asyncpg.Connection, video_ids: Sequence[str], floor: Granularity, cutoff: datetime, k: int
) -> dict[str, StatsSeries]:
    """Per video, its `floor` buckets before `cutoff`, as the release in steps of `k` needs them."""
    statement = STATS_SERIES_STATEMENTS[floor is Granularity.HOUR]
    return _series(await conn.fetch(statement, list(video_ids), floor.value, cutoff, k))


async def stats_fingerprints(conn: asyncpg.Connection, video_ids: Sequence[str], cutoff: datetime) -> dict[str, tuple[int, ...]]:
    """Per video, the sums of every count and unit column of its hours before `cutoff`. Every
    column but likes only grows, so any event stored before `cutoff` changes the fingerprint;
    likes (net of unlikes) are also summed weighted by their hour, so that a like in one hour
    and an unlike in another do not cancel out. Equal fingerprints mean the same data."""
    rows = await conn.fetch(
        """SELECT video_id, count(*), sum(views)::bigint, sum(watch_ms)::bigint, sum(completed_views)::bigint,
                  sum(viewers)::bigint, sum(likes)::bigint, sum(likers)::bigint, sum(unlikers)::bigint,
                  sum(comments)::bigint, sum(commenters)::bigint, sum(shares)::bigint, sum(sharers)::bigint,
                  sum(likes * (extract(epoch FROM hour)::bigint / 3600))::bigint
           FROM video_hourly WHERE video_id = ANY($1::text[]) AND hour < $2
           GROUP BY video_id""",
        list(video_ids),
        cutoff,
    )
    return {row[0]: tuple(row[1:]) for row in rows}


async def channels_released(
    conn: asyncpg.Connection, released_until: Mapping[str, datetime]
) -> dict[str, list[Bucket]]:
    """Shares by channel per video, counting the hours before the video's released end only: the
    lifetime cell less the hours since (a few, for a busy video).

    A cell's actors is a lower bound of its distinct sharers in those hours: each of the
    lifetime's distinct sharers shared before the end, or is counted in an hour after it."""
    rows = await conn.fetch(
        """SELECT r.video_id, c.channel::text, (c.shares - coalesce(t.shares, 0))::bigint,
                  greatest(c.sharers - coalesce(t.sharers, 0), 0)::bigint
           FROM unnest($1::text[], $2::timestamptz[]) AS r(video_id, released_until)
           JOIN video_channels c ON c.video_id = r.video_id
           LEFT JOIN LATERAL (
               SELECT sum(h.shares) AS shares, sum(h.sharers) AS sharers FROM video_hourly_channels h
               WHERE h.video_id = r.video_id AND h.channel = c.channel AND h.hour >= r.released_until
           ) t ON true
           WHERE c.shares - coalesce(t.shares, 0) > 0""",
        list(released_until),
        list(released_until.values()),
    )
    found: dict[str, list[Bucket]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(Bucket(row[1], row[2], row[3]))
    return found


async def audience(conn: asyncpg.Connection, video_id: str, dimension: str, until: datetime) -> list[Bucket]:
    """Distinct viewers per region or age band over the hours before `until` (migration 0008)."""
    rows = await conn.fetch("SELECT value, viewers, viewers FROM audience_released($1, $2, $3)", video_id, dimension, until)
    return [Bucket(*row) for row in rows]


# A video's buckets from its first one up to `until`, where something happened (sparse). A
# bucket's actors are the distinct people in it, from the ledger (migration 0009): the hourly
# rollup's distinct counts, summed over a day, would count a person once per hour.
_VIDEO_TIMELINE = """
SELECT h.start, h.count, coalesce(a.actors, 0)::bigint
FROM (
    SELECT date_trunc($2, hour, 'UTC') AS start, sum({count})::bigint AS count
    FROM video_hourly
    WHERE video_id = $1 AND hour < $3
    GROUP BY 1
) h
LEFT JOIN actor_units($1, '{{{metric}}}'::"char"[], $2, $3) a ON a.bucket = h.start
ORDER BY 1
"""
TIMELINE_STATEMENTS = {
    "shares": _VIDEO_TIMELINE.format(count="shares", metric="s"),
    "views": _VIDEO_TIMELINE.format(count="views", metric="v"),
}


async def timeline(
    conn: asyncpg.Connection, metric: str, video_id: str, granularity: Granularity, until: datetime
) -> list[Bucket]:
    """The video's `granularity` buckets before `until` (a bucket boundary) in which something
    happened, each with its distinct actors."""
    rows = await conn.fetch(TIMELINE_STATEMENTS[metric], video_id, granularity.value, until)
    return [Bucket(*row) for row in rows]


async def follower_growth(conn: asyncpg.Connection, creator_id: str, granularity: Granularity, until: datetime) -> list[Bucket]:
    """Net new followers (follows minus unfollows) per `granularity` bucket before `until`, where any
    happened, with the people who followed or unfollowed as its actors; the rollup is daily, so
    `granularity` is DAY or coarser and `until` a day boundary."""
    rows = await conn.fetch(
        """SELECT date_trunc($2, day::timestamp AT TIME ZONE 'UTC', 'UTC') AS start,
                  sum(follows - unfollows)::bigint, sum(followers + unfollowers)::bigint
           FROM creator_daily
           WHERE creator_id = $1 AND day::timestamp AT TIME ZONE 'UTC' < $3
           GROUP BY 1
           ORDER BY 1""",
        creator_id,
        granularity.value,
        until,
    )
    return [Bucket(*row) for row in rows]


async def creator_exists(conn: asyncpg.Connection, creator_id: str) -> bool:
    """A creator is a user with a video. (Followers alone do not make one: that a user without
    videos was found would say that somebody follows them.)"""
    found: bool = await conn.fetchval("SELECT EXISTS (SELECT FROM videos WHERE creator_id = $1)", creator_id)
    return found


# Keyset pages of a creator's videos; the cursor is the last row's sort key.
_BY_PUBLISHED = """
SELECT video_id, creator_id, published_at, extract(epoch FROM coalesce(published_at, 'epoch'))::float8 AS sort_key
FROM videos
WHERE creator_id = $1
  AND ($2::float8 IS NULL OR (extract(epoch FROM coalesce(published_at, 'epoch')), video_id) < ($2, $3::text))
ORDER BY coalesce(published_at, 'epoch') DESC, video_id DESC
LIMIT $4
"""
VIDEO_ORDER_STATEMENTS = {"published_at": _BY_PUBLISHED}


async def creator_video_rows(conn: asyncpg.Connection, creator_id: str) -> list[VideoRow]:
    """Every video of the creator (ordering by shares ranks them by what the privacy layer releases)."""
    rows = await conn.fetch("SELECT video_id, creator_id, published_at FROM videos WHERE creator_id = $1", creator_id)
    return [VideoRow(*row) for row in rows]


async def creator_videos(
    conn: asyncpg.Connection, creator_id: str, order: str, after: tuple[float, str] | None, limit: int
) -> list[tuple[VideoRow, float]]:
    after_key, after_id = after if after else (None, None)
    rows = await conn.fetch(VIDEO_ORDER_STATEMENTS[order], creator_id, after_key, after_id, limit)
    return [(VideoRow(row[0], row[1], row[2]), row[3]) for row in rows]


# A principal's own rows, through gateway_private: row-level security binds the
# transaction to the actor, and every statement names the actor as well.
async def _as_actor(conn: asyncpg.Connection, actor_id: str, statement: str, *args: object) -> list[asyncpg.Record]:
    async with conn.transaction(readonly=True):
        await conn.execute("SELECT set_config('gateway.actor_id', $1, true)", actor_id)
        rows: list[asyncpg.Record] = await conn.fetch(statement, actor_id, *args)
        return rows


async def my_shares(conn: asyncpg.Connection, actor_id: str, limit: int) -> list[asyncpg.Record]:
    return await _as_actor(
        conn,
        actor_id,
        """SELECT video_id, channel::text AS channel, occurred_at FROM events
           WHERE actor_id = $1 AND type = 'share' ORDER BY occurred_at DESC, event_id LIMIT $2""",
        limit,
    )


async def my_likes(conn: asyncpg.Connection, actor_id: str, limit: int) -> list[asyncpg.Record]:
    """Videos the actor likes now: the latest like/unlike per video is a like."""
    return await _as_actor(
        conn,
        actor_id,
        """SELECT video_id, occurred_at FROM (
               SELECT DISTINCT ON (video_id) video_id, type, occurred_at FROM events
               WHERE actor_id = $1 AND type IN ('like', 'unlike')
               ORDER BY video_id, occurred_at DESC, type DESC
           ) latest
           WHERE type = 'like' ORDER BY occurred_at DESC, video_id LIMIT $2""",
        limit,
    )


async def my_follows(conn: asyncpg.Connection, actor_id: str, limit: int) -> list[asyncpg.Record]:
    """Creators the actor follows now: the latest follow/unfollow per creator is a follow."""
    return await _as_actor(
        conn,
        actor_id,
        """SELECT creator_id, occurred_at FROM (
               SELECT DISTINCT ON (creator_id) creator_id, type, occurred_at FROM events
               WHERE actor_id = $1 AND type IN ('follow', 'unfollow')
               ORDER BY creator_id, occurred_at DESC, type DESC
           ) latest
           WHERE type = 'follow' ORDER BY occurred_at DESC, creator_id LIMIT $2""",
        limit,
    )
