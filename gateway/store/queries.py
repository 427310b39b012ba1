"""Read queries over the rollups (reader pool) and over a principal's own rows (private pool).

Every statement is a constant; values travel as parameters. Where a rollup
column depends on the question (views or shares), the statement is chosen
from a fixed table, never formatted from input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import asyncpg

__all__ = [
    "Bucket",
    "CreatorTotals",
    "Granularity",
    "VideoRow",
    "VideoStatsRow",
    "audience",
    "channels_by_video",
    "creator_exists",
    "creator_totals",
    "creator_videos",
    "follower_growth",
    "my_follows",
    "my_likes",
    "my_shares",
    "stats_by_video",
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


@dataclass(frozen=True)
class CreatorTotals:
    videos: int
    views: int
    likes: int
    comments: int
    shares: int
    followers: int


async def videos_by_id(conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, VideoRow]:
    rows = await conn.fetch(
        "SELECT video_id, creator_id, published_at FROM videos WHERE video_id = ANY($1::text[])", list(video_ids)
    )
    return {row["video_id"]: VideoRow(*row) for row in rows}


async def stats_by_video(conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, VideoStatsRow]:
    rows = await conn.fetch(
        """SELECT video_id, sum(views)::bigint, sum(likes)::bigint, sum(comments)::bigint, sum(shares)::bigint,
                  sum(watch_ms)::bigint, sum(completed_views)::bigint
           FROM video_hourly WHERE video_id = ANY($1::text[]) GROUP BY video_id""",
        list(video_ids),
    )
    return {row[0]: VideoStatsRow(*row[1:]) for row in rows}


async def channels_by_video(conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, list[Bucket]]:
    rows = await conn.fetch(
        """SELECT video_id, channel::text, shares, sharers FROM video_channels
           WHERE video_id = ANY($1::text[]) ORDER BY video_id, shares DESC, channel""",
        list(video_ids),
    )
    found: dict[str, list[Bucket]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(Bucket(row[1], row[2], row[3]))
    return found


async def audience(conn: asyncpg.Connection, video_id: str, dimension: str) -> list[Bucket]:
    rows = await conn.fetch(
        """SELECT value, viewers, viewers FROM video_audience
           WHERE video_id = $1 AND dimension = $2 AND viewers > 0 ORDER BY viewers DESC, value""",
        video_id,
        dimension,
    )
    return [Bucket(*row) for row in rows]


# A dense series: every bucket from `start` up to `end` (exclusive), zero where nothing happened.
_VIDEO_TIMELINE = """
WITH series AS (
    SELECT generate_series(date_trunc($4, $2::timestamptz, 'UTC'), $3::timestamptz - interval '1 microsecond',
                           ('1 ' || $4)::interval) AS start
), cells AS (
    SELECT date_trunc($4, hour, 'UTC') AS start, sum({count})::bigint AS count, sum({actors})::bigint AS actors
    FROM video_hourly
    WHERE video_id = $1 AND hour >= date_trunc($4, $2::timestamptz, 'UTC') AND hour < $3
    GROUP BY 1
)
SELECT s.start, coalesce(c.count, 0), coalesce(c.actors, 0)
FROM series s LEFT JOIN cells c USING (start)
ORDER BY s.start
"""
TIMELINE_STATEMENTS = {
    "shares": _VIDEO_TIMELINE.format(count="shares", actors="sharers"),
    "views": _VIDEO_TIMELINE.format(count="views", actors="viewers"),
}


async def timeline(
    conn: asyncpg.Connection, metric: str, video_id: str, start: datetime, end: datetime, granularity: Granularity
) -> list[Bucket]:
    rows = await conn.fetch(TIMELINE_STATEMENTS[metric], video_id, start, end, granularity.value)
    return [Bucket(*row) for row in rows]


async def follower_growth(
    conn: asyncpg.Connection, creator_id: str, start: datetime, end: datetime, granularity: Granularity
) -> list[Bucket]:
    """Net new followers per bucket (follows minus unfollows); the rollup is daily."""
    rows = await conn.fetch(
        """
        WITH series AS (
            SELECT generate_series(date_trunc($4, $2::timestamptz, 'UTC'), $3::timestamptz - interval '1 microsecond',
                                   ('1 ' || $4)::interval) AS start
        ), cells AS (
            SELECT date_trunc($4, day::timestamp AT TIME ZONE 'UTC', 'UTC') AS start,
                   sum(follows - unfollows)::bigint AS count, sum(followers)::bigint AS actors
            FROM creator_daily
            WHERE creator_id = $1 AND day >= (date_trunc($4, $2::timestamptz, 'UTC') AT TIME ZONE 'UTC')::date
              AND day::timestamp AT TIME ZONE 'UTC' < $3  -- a day that began before `to` counts whole
            GROUP BY 1
        )
        SELECT s.start, coalesce(c.count, 0), coalesce(c.actors, 0)
        FROM series s LEFT JOIN cells c USING (start)
        ORDER BY s.start
        """,
        creator_id,
        start,
        end,
        granularity.value,
    )
    return [Bucket(*row) for row in rows]


async def creator_exists(conn: asyncpg.Connection, creator_id: str) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT FROM videos WHERE creator_id = $1)
               OR EXISTS (SELECT FROM creator_daily WHERE creator_id = $1)""",
        creator_id,
    )
    return found


async def creator_totals(conn: asyncpg.Connection, creator_id: str) -> CreatorTotals:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM videos WHERE creator_id = $1),
                  coalesce(sum(h.views), 0)::bigint, coalesce(sum(h.likes), 0)::bigint,
                  coalesce(sum(h.comments), 0)::bigint, coalesce(sum(h.shares), 0)::bigint,
                  (SELECT coalesce(sum(follows - unfollows), 0)::bigint FROM creator_daily WHERE creator_id = $1)
           FROM videos v JOIN video_hourly h USING (video_id)
           WHERE v.creator_id = $1""",
        creator_id,
    )
    return CreatorTotals(*row)


# Keyset pages of a creator's videos; the cursor is the last row's sort key.
_BY_PUBLISHED = """
SELECT video_id, creator_id, published_at, extract(epoch FROM coalesce(published_at, 'epoch'))::float8 AS sort_key
FROM videos
WHERE creator_id = $1
  AND ($2::float8 IS NULL OR (extract(epoch FROM coalesce(published_at, 'epoch')), video_id) < ($2, $3::text))
ORDER BY coalesce(published_at, 'epoch') DESC, video_id DESC
LIMIT $4
"""
_BY_SHARES = """
SELECT v.video_id, v.creator_id, v.published_at, coalesce(t.shares, 0)::float8 AS sort_key
FROM videos v
LEFT JOIN LATERAL (SELECT sum(shares) AS shares FROM video_hourly h WHERE h.video_id = v.video_id) t ON true
WHERE v.creator_id = $1
  AND ($2::float8 IS NULL OR (coalesce(t.shares, 0)::float8, v.video_id) < ($2, $3::text))
ORDER BY 4 DESC, v.video_id DESC
LIMIT $4
"""
VIDEO_ORDER_STATEMENTS = {"published_at": _BY_PUBLISHED, "shares": _BY_SHARES}


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
