"""Read queries over videos (reader pool) and over a principal's own rows (private pool).

Every statement is a constant; values travel as parameters. Counts are not
read here: they are values of the release history (gateway.store.releases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

__all__ = [
    "VideoRow",
    "answer_version",
    "busiest_creators",
    "creator_exists",
    "creator_video_rows",
    "creator_videos",
    "my_follows",
    "my_likes",
    "my_shares",
    "videos_by_id",
]


@dataclass(frozen=True)
class VideoRow:
    video_id: str
    creator_id: str
    published_at: datetime | None
    duration_ms: int | None  # from its video_published event, when it said (retention needs it)


# A video exists for the API once its creator published it. (Ingest records a video the first time
# any event names it: were that served, one view of an unpublished video would show that someone
# had watched it, before any release.)
async def videos_by_id(conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, VideoRow]:
    rows = await conn.fetch(
        "SELECT video_id, creator_id, published_at, duration_ms FROM videos WHERE video_id = ANY($1::text[]) AND published_at IS NOT NULL",
        list(video_ids),
    )
    return {row["video_id"]: VideoRow(*row) for row in rows}


async def creator_exists(conn: asyncpg.Connection, creator_id: str) -> bool:
    """A creator is a user with a published video. (Followers alone do not make one: that a user
    without videos was found would say that somebody follows them.)"""
    found: bool = await conn.fetchval("SELECT EXISTS (SELECT FROM videos WHERE creator_id = $1 AND published_at IS NOT NULL)", creator_id)
    return found


# Keyset pages of a creator's videos; the cursor is the last row's sort key.
_BY_PUBLISHED = """
SELECT video_id, creator_id, published_at, extract(epoch FROM published_at)::float8 AS sort_key, duration_ms
FROM videos
WHERE creator_id = $1 AND published_at IS NOT NULL
  AND ($2::float8 IS NULL OR (extract(epoch FROM published_at), video_id) < ($2, $3::text))
ORDER BY published_at DESC, video_id DESC
LIMIT $4
"""
VIDEO_ORDER_STATEMENTS = {"published_at": _BY_PUBLISHED}


async def busiest_creators(conn: asyncpg.Connection, limit: int) -> list[tuple[str, int]]:
    """(creator, published videos) of the creators with the most videos, most first."""
    rows = await conn.fetch(
        "SELECT creator_id, count(*) FROM videos WHERE published_at IS NOT NULL GROUP BY creator_id ORDER BY count(*) DESC, creator_id LIMIT $1",
        limit,
    )
    return [(row[0], row[1]) for row in rows]


async def creator_video_rows(conn: asyncpg.Connection, creator_id: str) -> list[VideoRow]:
    """Every video of the creator (ordering by shares ranks them by their released shares)."""
    rows = await conn.fetch(
        "SELECT video_id, creator_id, published_at, duration_ms FROM videos WHERE creator_id = $1 AND published_at IS NOT NULL", creator_id
    )
    return [VideoRow(*row) for row in rows]


async def creator_videos(
    conn: asyncpg.Connection, creator_id: str, order: str, after: tuple[float, str] | None, limit: int
) -> list[tuple[VideoRow, float]]:
    after_key, after_id = after if after else (None, None)
    rows = await conn.fetch(VIDEO_ORDER_STATEMENTS[order], creator_id, after_key, after_id, limit)
    return [(VideoRow(row[0], row[1], row[2], row[4]), row[3]) for row in rows]


# A principal's own rows, through gateway_private: row-level security binds the
# transaction to the actor, and every statement names the actor as well. A limit of None
# reads them all (an access request's export).
async def _as_actor(conn: asyncpg.Connection, actor_id: str, statement: str, *args: object) -> list[asyncpg.Record]:
    async with conn.transaction(readonly=True):
        await conn.execute("SELECT set_config('gateway.actor_id', $1, true)", actor_id)
        rows: list[asyncpg.Record] = await conn.fetch(statement, actor_id, *args)
        return rows


async def my_shares(conn: asyncpg.Connection, actor_id: str, limit: int | None) -> list[asyncpg.Record]:
    return await _as_actor(
        conn,
        actor_id,
        """SELECT video_id, channel::text AS channel, occurred_at FROM events
           WHERE actor_id = $1 AND type = 'share' ORDER BY occurred_at DESC, event_id LIMIT $2""",
        limit,
    )


async def my_likes(conn: asyncpg.Connection, actor_id: str, limit: int | None) -> list[asyncpg.Record]:
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


async def my_follows(conn: asyncpg.Connection, actor_id: str, limit: int | None) -> list[asyncpg.Record]:
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


async def answer_version(conn: asyncpg.Connection) -> tuple[int, int]:
    """What kept answers are checked against (migration 0012): the catalogue's version, which moves
    whenever a published video's row changes, and the history's epoch, which moves with each
    arrival a backfill applies in the past."""
    row = await conn.fetchrow("SELECT version, history_epoch FROM catalog_version")
    return row[0], row[1]
