"""Held events applied to the release history in order of arrival: a backfill's, and a migrated store's.

Events are held in `arrivals_pending` with the time they count as arriving
(gateway.store.ingest.EventWriter.hold; migration 0011). Replaying applies them
one arrival at a time, each in a transaction of its own, exactly as live
ingest applies a batch (`apply_arrival()`, under the arrival lock), stamped
with their past arrival time. Nothing that arrived live is ever stamped in the
past, and how a backfill lands never depends on what arrived live:

* A subject (a video, or a creator's followers) with a release can be given no
  past: its held events arrive now.
* A subject with live activity but no release yet has nothing served of it, so
  its history is built afresh: its live state is cleared and the events that
  made it are held again, to arrive after the backfill, now. Its past releases
  then hold the backfill's events alone, whether or not anyone acted live.
* While a replay runs, a live arrival's events about a held subject wait with
  them (apply_arrival) and are applied after them, at the time they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from gateway.clock import Clock
from gateway.store.history import ARRIVAL_LOCK

__all__ = ["replay_pending"]

_SUBJECT = "coalesce({0}.video_id, {0}.creator_id) = t.subject_id AND (t.metric = 'f') = ({0}.video_id IS NULL)"

# The held subjects and whether each has a release; a subject with any release arrives now.
_HELD_SUBJECTS = f"""
CREATE TEMP TABLE replay_subjects ON COMMIT DROP AS
SELECT DISTINCT coalesce(p.video_id, p.creator_id) AS subject_id, p.video_id IS NULL AS followers,
       EXISTS (SELECT FROM live_totals t WHERE {_SUBJECT.format("p")} AND t.released_seq > 0) AS released,
       EXISTS (SELECT FROM live_totals t WHERE {_SUBJECT.format("p")}) AS active
FROM arrivals_pending p
WHERE NOT p.live
"""
_ARRIVE_NOW = """
UPDATE arrivals_pending p SET arrival = $1, live = true
FROM replay_subjects s
WHERE NOT p.live AND coalesce(p.video_id, p.creator_id) = s.subject_id AND (p.video_id IS NULL) = s.followers
  AND (s.released OR p.arrival > $1)
"""
# A subject with live activity and no release: what made its live state is held again, to arrive
# now, and the state is cleared.
_START_AFRESH = (
    """
INSERT INTO arrivals_pending (event_id, type, occurred_at, video_id, creator_id, actor_id, channel, region,
                              age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment, arrival, live)
SELECT e.event_id, e.type::text, e.occurred_at, e.video_id, e.creator_id, e.actor_id, e.channel::text, e.region,
       e.age_band, e.watch_ms, e.completed, e.text, e.anonymous, e.duration_ms, e.sentiment::text, $1, true
FROM events e
JOIN replay_subjects s ON coalesce(e.video_id, e.creator_id) = s.subject_id AND (e.video_id IS NULL) = s.followers
WHERE s.active AND NOT s.released
ON CONFLICT (event_id) DO NOTHING""",
    """DELETE FROM live_totals t USING replay_subjects s
       WHERE s.active AND NOT s.released AND t.subject_id = s.subject_id AND (t.metric = 'f') = s.followers""",
    """DELETE FROM live_cells c USING replay_subjects s
       WHERE s.active AND NOT s.released AND c.subject_id = s.subject_id AND NOT s.followers""",
    """DELETE FROM video_people l USING replay_subjects s
       WHERE s.active AND NOT s.released AND l.video_id = s.subject_id AND NOT s.followers""",
    """DELETE FROM video_viewers l USING replay_subjects s
       WHERE s.active AND NOT s.released AND l.video_id = s.subject_id AND NOT s.followers""",
    """DELETE FROM follow_state f USING replay_subjects s
       WHERE s.active AND NOT s.released AND f.creator_id = s.subject_id AND s.followers""",
)
_TAKE_ARRIVAL = """
WITH taken AS (
    DELETE FROM arrivals_pending p WHERE p.arrival = $1 AND p.live = $2
    RETURNING p.event_id, p.type, p.occurred_at, p.video_id, p.creator_id, p.actor_id, p.channel, p.region,
              p.age_band, p.watch_ms, p.completed, p.text, p.anonymous, p.duration_ms, p.sentiment
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
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
        now = clock()
        await conn.execute(_HELD_SUBJECTS)
        await conn.execute(_ARRIVE_NOW, now)
        requeue, *clear = _START_AFRESH
        await conn.execute(requeue, now)
        for statement in clear:
            await conn.execute(statement)
        total: int = await conn.fetchval("SELECT count(*) FROM (SELECT DISTINCT arrival, live FROM arrivals_pending) arrivals")
    made = done = 0
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
            row = await conn.fetchrow("SELECT arrival, live FROM arrivals_pending ORDER BY arrival, live LIMIT 1")
            if row is None:
                return made
            moment: datetime = row["arrival"]
            await conn.execute(_TAKE_ARRIVAL, moment, row["live"])
            # What arrived live is applied at the time it is, never in the past.
            released: int = await conn.fetchval("SELECT apply_arrival($1, false)", clock() if row["live"] else moment)
            if released and not row["live"]:
                # Releases made in the past: answers kept as final must be made again (migration 0012).
                await conn.execute("UPDATE catalog_version SET history_epoch = history_epoch + 1")
            made += released
        done += 1
        progress(done, max(done, total))
