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

import asyncpg

__all__ = [
    "Bucket",
    "Granularity",
    "VideoRow",
    "VideoStatsRow",
    "audience",
    "channels_released",
    "creator_exists",
    "creator_stats_series",
    "creator_video_count",
    "creator_video_rows",
    "creator_videos",
    "follower_growth",
    "follower_series",
    "my_follows",
    "my_likes",
    "my_shares",
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


# A video's totals are released from its closed floor buckets (gateway.privacy.release): one row
# per video and bucket, oldest first. Each count is followed by its distinct-actor units.
_STATS_SERIES = """
SELECT video_id, date_trunc($2, hour, 'UTC') AS bucket,
       sum(views)::bigint, sum(watch_ms)::bigint, sum(completed_views)::bigint, sum(viewers)::bigint,
       sum(likes)::bigint, sum(likers + unlikers)::bigint,
       sum(comments)::bigint, sum(commenters)::bigint,
       sum(shares)::bigint, sum(sharers)::bigint
FROM video_hourly
WHERE {videos} AND hour < $3
GROUP BY 1, 2
ORDER BY 1, 2
"""
STATS_SERIES_STATEMENTS = {
    "videos": _STATS_SERIES.format(videos="video_id = ANY($1::text[])"),
    "creator": _STATS_SERIES.format(videos="video_id IN (SELECT video_id FROM videos WHERE creator_id = $1)"),
}


def _by_video(rows: list[asyncpg.Record]) -> dict[str, list[asyncpg.Record]]:
    found: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row)
    return found


async def stats_series(
    conn: asyncpg.Connection, video_ids: Sequence[str], floor: Granularity, cutoff: datetime
) -> dict[str, list[asyncpg.Record]]:
    """Per video, its `floor` buckets before `cutoff`: (video_id, bucket, views, watch_ms, completed_views,
    viewers, likes, like units, comments, commenters, shares, sharers)."""
    return _by_video(await conn.fetch(STATS_SERIES_STATEMENTS["videos"], list(video_ids), floor.value, cutoff))


async def creator_stats_series(
    conn: asyncpg.Connection, creator_id: str, floor: Granularity, cutoff: datetime
) -> dict[str, list[asyncpg.Record]]:
    """`stats_series` of every video of the creator."""
    return _by_video(await conn.fetch(STATS_SERIES_STATEMENTS["creator"], creator_id, floor.value, cutoff))


async def channels_released(
    conn: asyncpg.Connection, released_until: Mapping[str, datetime]
) -> dict[str, list[Bucket]]:
    """Shares by channel per video, counting the hours before the video's released end only.

    A cell's actors is the smaller of two upper bounds of its distinct sharers in those hours:
    the sum of the hourly distinct counts, and the video's lifetime distinct count."""
    rows = await conn.fetch(
        """SELECT r.video_id, c.channel::text, sum(c.shares)::bigint,
                  least(sum(c.sharers), max(t.sharers))::bigint
           FROM unnest($1::text[], $2::timestamptz[]) AS r(video_id, released_until)
           JOIN video_hourly_channels c ON c.video_id = r.video_id AND c.hour < r.released_until
           LEFT JOIN video_channels t ON t.video_id = c.video_id AND t.channel = c.channel
           GROUP BY 1, 2""",
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


# A video's buckets from its first one up to `until`, where something happened (sparse).
_VIDEO_TIMELINE = """
SELECT date_trunc($2, hour, 'UTC') AS start, sum({count})::bigint, sum({actors})::bigint
FROM video_hourly
WHERE video_id = $1 AND hour < $3
GROUP BY 1
ORDER BY 1
"""
TIMELINE_STATEMENTS = {
    "shares": _VIDEO_TIMELINE.format(count="shares", actors="sharers"),
    "views": _VIDEO_TIMELINE.format(count="views", actors="viewers"),
}


async def timeline(
    conn: asyncpg.Connection, metric: str, video_id: str, granularity: Granularity, until: datetime
) -> list[Bucket]:
    """The video's `granularity` buckets before `until` (a bucket boundary) in which something happened."""
    rows = await conn.fetch(TIMELINE_STATEMENTS[metric], video_id, granularity.value, until)
    return [Bucket(*row) for row in rows]


async def follower_growth(conn: asyncpg.Connection, creator_id: str, granularity: Granularity, until: datetime) -> list[Bucket]:
    """Net new followers (follows minus unfollows) per `granularity` bucket before `until`, where any
    happened; the rollup is daily, so `granularity` is DAY or coarser and `until` a day boundary."""
    rows = await conn.fetch(
        """SELECT date_trunc($2, day::timestamp AT TIME ZONE 'UTC', 'UTC') AS start,
                  sum(follows - unfollows)::bigint, sum(followers)::bigint
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
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT FROM videos WHERE creator_id = $1)
               OR EXISTS (SELECT FROM creator_daily WHERE creator_id = $1)""",
        creator_id,
    )
    return found


async def creator_video_count(conn: asyncpg.Connection, creator_id: str) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM videos WHERE creator_id = $1", creator_id)
    return count


async def follower_series(conn: asyncpg.Connection, creator_id: str, cutoff: datetime) -> list[asyncpg.Record]:
    """The creator's whole days that ended by `cutoff`, oldest first: (day, net follows, follow units)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT day, (follows - unfollows)::bigint, (followers + unfollowers)::bigint
           FROM creator_daily
           WHERE creator_id = $1 AND day::timestamp AT TIME ZONE 'UTC' + interval '1 day' <= $2
           ORDER BY day""",
        creator_id,
        cutoff,
    )
    return rows


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
