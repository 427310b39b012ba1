"""Shared by the store tests: building events, clean slates, and the live state recomputed from scratch over `events`."""

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
    "LIVE_TABLES",
    "assert_history_is_sound",
    "assert_live_state_matches_events",
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
    """Every table that holds ingested data (partitions are reached through `events`); not the
    migrations' record nor the history's settings (its k, the dimensions of each metric)."""
    rows = await admin.fetch(
        """SELECT relname FROM pg_class
           WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
             AND NOT relispartition AND relname NOT IN ('schema_migrations', 'release_settings', 'metric_dimensions')
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


# The live state recomputed from the raw events alone, column for column as the tables store it
# (the columns arrival order decides, released_*, aside), with distinct counts taken by
# count(DISTINCT actor_id) rather than through the ledger.
_METRIC = """(CASE type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'l'
                        WHEN 'comment' THEN 'c' ELSE 's' END)::"char" """
_LATEST_FOLLOWS = """
    SELECT DISTINCT ON (creator_id, actor_id) creator_id, actor_id, type = 'follow' AS following, occurred_at AS state_at
    FROM events WHERE type IN ('follow', 'unfollow')
    ORDER BY creator_id, actor_id, occurred_at DESC, type DESC"""
# Each viewer's watch time counts up to three minutes (migration 0015).
_CAPPED_WATCH = """
    SELECT video_id, sum(least(watched, 180000)) AS capped
    FROM (SELECT video_id, actor_id, sum(watch_ms) AS watched FROM events WHERE type = 'view' GROUP BY 1, 2) viewers
    GROUP BY 1"""
# A share is anonymous, and in the channel cell 'undisclosed' rather than its channel's, as its
# event's `anonymous` says: ingest decides it once, when it receives the share (migration 0018;
# tests/store/test_consent.py tests the decision).
_ANONYMOUS = "(type = 'share' AND anonymous)"
# Each viewer's longest view of a video with a known duration, in tenths of it (migration 0023).
_DEPTHS = """
    SELECT l.video_id, watched_depth(l.longest, v.duration_ms) AS depth, count(*) AS viewers
    FROM (SELECT video_id, actor_id, max(watch_ms) AS longest FROM events WHERE type = 'view' GROUP BY 1, 2) l
    JOIN videos v ON v.video_id = l.video_id AND v.duration_ms IS NOT NULL
    GROUP BY 1, 2"""
# A view makes its viewer one of its video's creator's audience, and of the hour of the week it occurred in.
_AUDIENCE = """
    SELECT v.creator_id, e.actor_id, hour_of_week(e.occurred_at) AS hour_of_week
    FROM events e JOIN videos v ON v.video_id = e.video_id
    WHERE e.type = 'view'"""
FROM_SCRATCH: dict[str, tuple[str, str]] = {
    "videos": (
        "SELECT video_id, creator_id, published_at, duration_ms FROM videos",
        """SELECT video_id, min(creator_id) AS creator_id,
                  min(occurred_at) FILTER (WHERE type = 'video_published') AS published_at,
                  (array_agg(duration_ms ORDER BY occurred_at, event_id) FILTER (WHERE duration_ms IS NOT NULL))[1] AS duration_ms
           FROM events WHERE video_id IS NOT NULL
           GROUP BY video_id""",
    ),
    "live_totals": (
        "SELECT subject_id, metric, people, events, watch_capped_ms FROM live_totals",
        f"""SELECT t.subject_id, t.metric, t.people, t.events, coalesce(w.capped, 0) AS watch_capped_ms
            FROM (SELECT video_id AS subject_id, {_METRIC} AS metric, count(DISTINCT actor_id) AS people,
                         sum(CASE type WHEN 'unlike' THEN -1 ELSE 1 END) AS events
                  FROM events WHERE type IN ('view', 'like', 'unlike', 'comment', 'share')
                  GROUP BY 1, 2) t
            LEFT JOIN ({_CAPPED_WATCH}) w ON w.video_id = t.subject_id AND t.metric = 'v'
            UNION ALL
            SELECT creator_id, 'f', count(*), count(*) FILTER (WHERE following), 0
            FROM ({_LATEST_FOLLOWS}) latest
            GROUP BY 1
            UNION ALL
            SELECT creator_id, 'a', count(DISTINCT actor_id), count(DISTINCT actor_id), 0
            FROM ({_AUDIENCE}) audience
            GROUP BY 1""",
    ),
    "live_cells": (
        # A depth cell every viewer has left (to go further) stays behind, empty (migration 0023).
        "SELECT subject_id, metric, dimension, value, events, people FROM live_cells WHERE NOT (dimension = 'd' AND people = 0)",
        f"""SELECT video_id AS subject_id, metric, dimension, value, sum(events) AS events, count(DISTINCT actor_id) AS people
            FROM (SELECT video_id, actor_id, {_METRIC} AS metric, d.dimension, d.value, d.events
                  FROM events
                  CROSS JOIN LATERAL (VALUES ('c'::"char", CASE WHEN {_ANONYMOUS} THEN 'undisclosed' ELSE channel::text END, 1),
                                             ('r', coalesce(region::text, 'unknown'), 1),
                                             ('a', coalesce(age_band, 'unknown'), 1),
                                             ('s', sentiment::text, 1)) AS d (dimension, value, events)
                  WHERE type IN ('view', 'share', 'comment')) cells
            WHERE (metric, dimension) IN (SELECT metric, dimension FROM metric_dimensions) AND value IS NOT NULL
            GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT video_id, 'v', 'w', CASE WHEN completed THEN 'completed' ELSE 'not_completed' END, count(*), count(DISTINCT actor_id)
            FROM events WHERE type = 'view' GROUP BY 1, 4
            UNION ALL
            SELECT video_id, 'v', 'd', depth_cell(depth), viewers, viewers FROM ({_DEPTHS}) depths
            UNION ALL
            SELECT creator_id, 'a', 'h', hour_of_week::text, count(DISTINCT actor_id), count(DISTINCT actor_id)
            FROM ({_AUDIENCE}) audience GROUP BY 1, 4""",
    ),
    "video_viewers": (
        "SELECT video_id, actor_id, watch_ms, completed, not_completed, longest_view_ms, depth FROM video_viewers",
        """SELECT e.video_id, e.actor_id, sum(e.watch_ms), bool_or(e.completed IS TRUE), bool_or(e.completed IS NOT TRUE),
                  max(e.watch_ms), watched_depth(max(e.watch_ms), min(v.duration_ms))
           FROM events e JOIN videos v ON v.video_id = e.video_id WHERE e.type = 'view' GROUP BY 1, 2""",
    ),
    "creator_viewers": ("SELECT creator_id, actor_id, hour_of_week FROM creator_viewers", f"SELECT DISTINCT * FROM ({_AUDIENCE}) audience"),
    "follow_state": ("SELECT creator_id, actor_id, following, state_at FROM follow_state", _LATEST_FOLLOWS),
}
LIVE_TABLES = tuple(FROM_SCRATCH)


async def _rows(conn: asyncpg.Connection, query: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(row) for row in await conn.fetch(query)), key=repr)


async def assert_live_state_matches_events(admin: asyncpg.Connection) -> None:
    for table, (stored, from_scratch) in FROM_SCRATCH.items():
        kept, recounted = await _rows(admin, stored), await _rows(admin, from_scratch)
        only_kept = [row for row in kept if row not in recounted]
        only_recounted = [row for row in recounted if row not in kept]
        assert kept == recounted, f"{table} differs from its recount over events: kept {only_kept}, recounted {only_recounted}"


async def assert_history_is_sound(admin: asyncpg.Connection) -> None:
    """Every release history is a sequence of steps of at least the history's k new people, made in
    increasing time, ending where the live totals say, with nothing left behind that should have
    been released."""
    k = await admin.fetchval("SELECT k FROM release_settings")
    steps = await admin.fetch(
        """SELECT subject_id, metric, seq, made_at, people, prev_people,
                  lag(people, 1, 0::bigint) OVER w AS before, lag(made_at) OVER w AS made_before,
                  row_number() OVER w AS position
           FROM releases WINDOW w AS (PARTITION BY subject_id, metric ORDER BY seq)"""
    )
    for step in steps:
        assert step["seq"] == step["position"], step
        assert step["prev_people"] == step["before"] and step["people"] - step["before"] >= k, step
        assert step["made_before"] is None or step["made_before"] < step["made_at"], step
    lagging = await admin.fetch(
        """SELECT t.subject_id, t.metric FROM live_totals t
           LEFT JOIN LATERAL (SELECT max(seq) AS seq, max(people) AS people FROM releases r
                              WHERE r.subject_id = t.subject_id AND r.metric = t.metric) r ON true
           WHERE coalesce(r.seq, 0) <> t.released_seq OR coalesce(r.people, 0) <> t.released_people
              OR (t.people - t.released_people >= $1 AND $1 > 0)""",
        k,
    )
    assert lagging == [], "live totals disagree with their last release, or hold back a full step"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
