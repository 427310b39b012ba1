"""Held events applied to the release history in order of arrival: a backfill's, and a migrated store's.

Events are held in `arrivals_pending` with the time they count as arriving
(gateway.store.ingest.EventWriter.hold; migration 0011). Replaying applies them
one arrival at a time, each in a transaction of its own, exactly as live
ingest applies a batch (`apply_arrival()`, under the arrival lock). A held
event whose subject already has a release cannot go into its past: it arrives
now instead, so nothing already served is given a new past.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from gateway.store.history import ARRIVAL_LOCK

__all__ = ["replay_pending"]

# Held events of a subject with a history arrive now; so do any held for the future.
_ARRIVE_NOW = """
UPDATE arrivals_pending p SET arrival = $1
WHERE p.arrival <> $1
  AND (p.arrival > $1
       OR EXISTS (SELECT FROM live_totals t
                  WHERE t.subject_id = coalesce(p.video_id, p.creator_id)
                    AND (t.metric = 'f') = (p.video_id IS NULL) AND t.released_seq > 0))
"""
_NEXT_ARRIVAL = """
WITH next AS (SELECT min(arrival) AS moment FROM arrivals_pending),
taken AS (
    DELETE FROM arrivals_pending p USING next WHERE p.arrival = next.moment
    RETURNING p.event_id, p.type, p.occurred_at, p.video_id, p.creator_id, p.actor_id, p.channel, p.region,
              p.age_band, p.watch_ms, p.completed, p.text, p.anonymous
)
INSERT INTO ingest_fresh SELECT * FROM taken
"""


async def replay_pending(
    conn: asyncpg.Connection, now: datetime, progress: Callable[[int, int], None] = lambda done, total: None
) -> int:
    """Applies every held event, one arrival (one distinct arrival time) a transaction, oldest
    first; returns the number of releases made. Safe to stop at any point and run again.
    `progress(done, total)` hears of each arrival applied."""
    await conn.execute("SELECT prepare_arrivals()")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
        await conn.execute(_ARRIVE_NOW, now)
        total: int = await conn.fetchval("SELECT count(DISTINCT arrival) FROM arrivals_pending")
    made = done = 0
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
            moment: datetime | None = await conn.fetchval("SELECT min(arrival) FROM arrivals_pending")
            if moment is None:
                return made
            await conn.execute(_NEXT_ARRIVAL)
            made += await conn.fetchval("SELECT apply_arrival($1)", moment)
        done += 1
        progress(done, total)
