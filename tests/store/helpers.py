"""Shared by the store tests: building events, clean slates, and rollups recomputed from scratch over `events`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.ingest.events import EventRecord
from gateway.ingest.ndjson import parse_objects
from gateway.store.ingest import BatchResult, EventWriter

__all__ = [
    "FROM_SCRATCH",
    "ROLLUP_TABLES",
    "assert_rollups_match_events",
    "data_tables",
    "event",
    "ingest",
    "records",
    "snapshot",
    "truncate_all",
    "utc",
]

# Type-specific fields a valid event of each type needs; follows are about a creator, not a video.
_REQUIRED: dict[str, dict[str, Any]] = {
    "video_published": {},
    "view": {"watch_ms": 1_000},
    "like": {},
    "unlike": {},
    "comment": {"text": "nice"},
    "share": {"channel": "whatsapp"},
    "follow": {},
    "unfollow": {},
}
FOLLOW_TYPES = ("follow", "unfollow")


def event(
    type: str,
    event_id: str,
    occurred_at: datetime | str,
    *,
    video_id: str | None = "v1",
    creator_id: str = "c1",
    actor_id: str = "u1",
    **fields: Any,
) -> dict[str, Any]:
    """One event as the platform sends it; `fields` override the type's defaults."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": type,
        "occurred_at": occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at,
        "creator_id": creator_id,
        "actor_id": actor_id,
        **_REQUIRED[type],
        **fields,
    }
    if type not in FOLLOW_TYPES:
        body["video_id"] = video_id
    return body


def records(events: Iterable[dict[str, Any]]) -> list[EventRecord]:
    """Validates events exactly as ingest does; a bad one fails the test here, not in the store."""
    parsed = parse_objects(events)
    parsed.raise_if_invalid()
    return parsed.records


async def ingest(writer: EventWriter, events: Iterable[dict[str, Any]]) -> BatchResult:
    return await writer.write(records(events))


async def data_tables(admin: asyncpg.Connection) -> list[str]:
    """Every table that holds ingested data (partitions are reached through `events`)."""
    rows = await admin.fetch(
        """SELECT relname FROM pg_class
           WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
             AND NOT relispartition AND relname <> 'schema_migrations'
           ORDER BY relname"""
    )
    return [row["relname"] for row in rows]


async def truncate_all(admin: asyncpg.Connection) -> None:
    tables = await data_tables(admin)
    await admin.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in tables))


async def snapshot(admin: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, in a comparable order."""
    return {
        table: sorted((tuple(row) for row in await admin.fetch(f'SELECT * FROM "{table}"')), key=repr)
        for table in await data_tables(admin)
    }


# Each rollup recomputed from the raw events alone, column for column as the table stores it,
# with distinct counts taken by count(DISTINCT actor_id) rather than through the actor ledgers.
FROM_SCRATCH: dict[str, str] = {
    "videos": """
        SELECT video_id, min(creator_id) AS creator_id,
               min(occurred_at) FILTER (WHERE type = 'video_published') AS published_at
        FROM events WHERE video_id IS NOT NULL
        GROUP BY video_id""",
    "video_hourly": """
        SELECT video_id, date_trunc('hour', occurred_at, 'UTC') AS hour,
               count(*) FILTER (WHERE type = 'view') AS views,
               coalesce(sum(watch_ms), 0) AS watch_ms,
               count(*) FILTER (WHERE type = 'view' AND completed) AS completed_views,
               count(*) FILTER (WHERE type = 'like') - count(*) FILTER (WHERE type = 'unlike') AS likes,
               count(*) FILTER (WHERE type = 'comment') AS comments,
               count(*) FILTER (WHERE type = 'share') AS shares,
               count(DISTINCT actor_id) FILTER (WHERE type = 'view') AS viewers,
               count(DISTINCT actor_id) FILTER (WHERE type = 'like') AS likers,
               count(DISTINCT actor_id) FILTER (WHERE type = 'unlike') AS unlikers,
               count(DISTINCT actor_id) FILTER (WHERE type = 'comment') AS commenters,
               count(DISTINCT actor_id) FILTER (WHERE type = 'share') AS sharers
        FROM events WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
        GROUP BY 1, 2""",
    "video_hourly_channels": """
        SELECT video_id, date_trunc('hour', occurred_at, 'UTC') AS hour, channel,
               count(*) AS shares, count(DISTINCT actor_id) AS sharers
        FROM events WHERE type = 'share'
        GROUP BY 1, 2, 3""",
    "video_channels": """
        SELECT video_id, channel, count(*) AS shares, count(DISTINCT actor_id) AS sharers
        FROM events WHERE type = 'share'
        GROUP BY 1, 2""",
    "video_audience": """
        SELECT video_id, d.dimension, d.value,
               count(*) FILTER (WHERE type = 'view') AS views,
               count(DISTINCT actor_id) FILTER (WHERE type = 'view') AS viewers,
               count(*) FILTER (WHERE type = 'share') AS shares,
               count(DISTINCT actor_id) FILTER (WHERE type = 'share') AS sharers
        FROM events
        CROSS JOIN LATERAL (VALUES ('region', coalesce(region::text, 'unknown')),
                                   ('age_band', coalesce(age_band, 'unknown'))) AS d (dimension, value)
        WHERE type IN ('view', 'share')
        GROUP BY 1, 2, 3""",
    "creator_daily": """
        SELECT creator_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE type = 'follow') AS follows,
               count(*) FILTER (WHERE type = 'unfollow') AS unfollows,
               count(DISTINCT actor_id) FILTER (WHERE type = 'follow') AS followers,
               count(DISTINCT actor_id) FILTER (WHERE type = 'unfollow') AS unfollowers
        FROM events WHERE type IN ('follow', 'unfollow')
        GROUP BY 1, 2""",
}
ROLLUP_TABLES = tuple(FROM_SCRATCH)


async def _rows(conn: asyncpg.Connection, query: str) -> list[dict[str, Any]]:
    return sorted((dict(row) for row in await conn.fetch(query)), key=lambda row: repr(list(row.values())))


async def assert_rollups_match_events(admin: asyncpg.Connection) -> None:
    for table, from_scratch in FROM_SCRATCH.items():
        stored = await _rows(admin, f"SELECT * FROM {table}")
        expected = await _rows(admin, from_scratch)
        assert stored == expected, f"{table} differs from its GROUP BY over events"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
