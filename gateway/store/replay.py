"""Held events applied to the release history in order of arrival: a backfill's, and a migrated store's.

Events are held in `arrivals_pending` with the time they count as arriving
(gateway.store.ingest.EventWriter.hold; migration 0011). Replaying applies them
one arrival at a time, each in a transaction of its own, exactly as live
ingest applies a batch (`apply_arrival()`, under the arrival lock), stamped
with their past arrival time. That is only sound for a subject (a video, or a
creator's followers) nothing had arrived for: any release made in its past
would then hold nothing but replayed events. So a held event whose subject
already has activity of any kind, released or not, arrives now instead; and
so does one whose subject a live arrival reaches while the replay runs.
Nothing that has arrived live is ever stamped in the past.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from gateway.clock import Clock
from gateway.store.history import ARRIVAL_LOCK

__all__ = ["replay_pending"]

# The subject of a held event: its video, or for a follow or unfollow the creator's followers.
_SUBJECT_OF_HELD = """
SELECT FROM live_totals t
WHERE t.subject_id = coalesce(p.video_id, p.creator_id) AND (t.metric = 'f') = (p.video_id IS NULL)
"""
# Before replaying: held events of a subject with any activity applied, or held for the future, arrive now.
_ARRIVE_NOW = f"""
UPDATE arrivals_pending p SET arrival = $1
WHERE p.arrival <> $1 AND (p.arrival > $1 OR EXISTS ({_SUBJECT_OF_HELD}))
"""
# While replaying: held events of the next arrival whose subject a live arrival has reached arrive now.
_OVERTAKEN = f"""
UPDATE arrivals_pending p SET arrival = $2
WHERE p.arrival = $1 AND EXISTS ({_SUBJECT_OF_HELD} AND t.live)
"""
_TAKE_ARRIVAL = """
WITH taken AS (
    DELETE FROM arrivals_pending p WHERE p.arrival = $1
    RETURNING p.event_id, p.type, p.occurred_at, p.video_id, p.creator_id, p.actor_id, p.channel, p.region,
              p.age_band, p.watch_ms, p.completed, p.text, p.anonymous
)
INSERT INTO ingest_fresh SELECT * FROM taken
"""


async def replay_pending(
    conn: asyncpg.Connection, clock: Clock, progress: Callable[[int, int], None] = lambda done, total: None
) -> int:
    """Applies every held event, one arrival (one distinct arrival time) a transaction, oldest
    first; returns the number of releases made. Safe to stop at any point and run again.
    `progress(done, total)` hears of each arrival applied."""
    await conn.execute("SELECT prepare_arrivals()")
    arriving_now = {clock()}  # the moments held events were moved to: they arrive live
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
        await conn.execute(_ARRIVE_NOW, *arriving_now)
        total: int = await conn.fetchval("SELECT count(DISTINCT arrival) FROM arrivals_pending")
    made = done = 0
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
            moment: datetime | None = await conn.fetchval("SELECT min(arrival) FROM arrivals_pending")
            if moment is None:
                return made
            if moment not in arriving_now:
                now = clock()
                if (await conn.execute(_OVERTAKEN, moment, now)) != "UPDATE 0":
                    arriving_now.add(now)
            if (await conn.execute(_TAKE_ARRIVAL, moment)) != "INSERT 0 0":
                made += await conn.fetchval("SELECT apply_arrival($1, $2)", moment, moment in arriving_now)
        done += 1
        progress(done, max(done, total))
