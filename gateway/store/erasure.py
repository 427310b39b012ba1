"""Erasing a person, at their request: `gateway erase-user` and `Mutation.eraseUser`, one transaction.

What goes: the person's raw events (stored, or waiting for a replay), their rows in the ledgers of
people, viewers, creators' audiences and followers, the rows of gateway.store.personal_data.PERSONAL_ROWS; their app
grants are revoked (a grant's row stays, emptied, so that the tokens issued under it stay
refused). What stays: the release history. Every number ever served is a value of a release, and
releases are kept as they were made: an erasure moves no released number, and no later release
shows it by a total that falls.

The live totals (what arrived since each metric's last release) are settled per subject and
metric, by whether the person was counted in its last release:

* not yet released (their first ledger row arrived after the release, or there is none): their
  part of the live totals and cells goes with their events, exactly, as if it had never arrived:
  of a video's views, that is also their watch time up to the cap in the capped sum, and their
  place among the people and views of each completion cell, as their row in the ledger of viewers
  (migration 0015) says, and their depth cell (0023); of comments, their place in each sentiment
  cell; of a creator's audience (metric 'a', 0023), one viewer and their hours of the week, as the
  ledger of creators' audiences says. The next release is then the one a store that never saw them would make;
  and it never counts one human twice among its k new people (their old self and, after the
  erasure, their new one).
* released: the person stays counted as one of the metric's people, anonymously, and so does
  everything of theirs the live totals hold by now, their events since that release included
  (and of views, their capped watch time and their place in the completion cells).
  The store does not record which arrival brought each event (that would cost ingest a write per
  event); a person already counted adds no person with later events, and their share of a count
  leaves no mark that would let a release tell the erasure apart.

Either way the ledgers forget them, so activity of theirs that arrives later is a new person's:
they count again, as one of the k new people of a later release, and a view of theirs adds their
watch time up to the cap and their completion afresh. An event of theirs stored by a batch still
waiting for the arrival lock is such later activity: it arrives after the erasure.

Locks: erasure takes the arrival lock before it touches any row, where a batch takes it after
storing its events (gateway.store.ingest). Before the lock a batch holds only rows of its own,
uncommitted (event ids, events, and a backfill's held events, which never take the lock), that no
snapshot of the erasure sees, so the erasure never waits for it; under the lock the two run one
at a time, as replays do (they take the lock before touching anything too). Neither can hold
what the other waits for.

Event ids stay in event_ids (an id, not who or what): an erased event sent again is skipped as a
duplicate, as it would be had it never been erased, rather than stored anew.

The erasure record (table `erasures`) keeps that the erasure happened, when and by whom, and a
keyed digest of the person's id (HMAC under a key derived from GATEWAY_SECRET) so that a repeated
request is idempotent and can be answered "already erased on …"; never what was removed.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store.history import ARRIVAL_LOCK, ERASURE_LOCK
from gateway.store.personal_data import PERSONAL_ROWS

__all__ = ["ErasureReceipt", "derive_erasure_key", "erase_person", "subject_key"]


def derive_erasure_key(secret: str) -> bytes:
    """A key for erasure records only: no digest of a person's id is a token signature or noise."""
    return hmac.new(secret.encode(), b"privacy-gateway/erasure-subject/v1", hashlib.sha256).digest()


def subject_key(erasure_key: bytes, person_id: str) -> bytes:
    """Whose erasure a record is about, readable only by whoever holds the secret and the id."""
    return hmac.new(erasure_key, person_id.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class ErasureReceipt:
    """What the caller is told. `repeated`: nothing of the person was left to erase, and this is the
    receipt of the erasure that removed it. The counts are told, never recorded."""

    erasure_id: str
    erased_at: datetime
    erased_by: str
    repeated: bool
    events: int
    app_grants: int


# Both deletions in one statement, so in one snapshot: an event a backfill holds is gone from events
# and from arrivals_pending together, and marked held (never applied, so in no live total).
_TAKE_EVENTS = (
    """CREATE TEMP TABLE erased_events (
           event_id text COLLATE "C", metric "char", video_id text COLLATE "C", region text COLLATE "C",
           age_band text COLLATE "C", channel text, sentiment text, events integer, watch_ms integer, completed boolean,
           held boolean
       ) ON COMMIT DROP""",
    """WITH held AS (
           DELETE FROM arrivals_pending WHERE actor_id = $1 RETURNING event_id
       ), erased AS (
           DELETE FROM events WHERE actor_id = $1
           RETURNING event_id, type, video_id, region, age_band, channel, sentiment, watch_ms, completed, anonymous
       )
       INSERT INTO erased_events
       SELECT e.event_id,
              (CASE e.type WHEN 'view' THEN 'v' WHEN 'like' THEN 'l' WHEN 'unlike' THEN 'l'
                           WHEN 'comment' THEN 'c' WHEN 'share' THEN 's' END)::"char",
              e.video_id, coalesce(e.region, 'unknown'), coalesce(e.age_band, 'unknown'),
              -- An anonymous share (decided when ingest received it, migration 0018) is in the cell
              -- 'undisclosed', never in its event's channel.
              CASE WHEN e.type = 'share' AND coalesce(e.anonymous, false) THEN 'undisclosed' ELSE e.channel::text END,
              e.sentiment::text,
              CASE e.type WHEN 'unlike' THEN -1 ELSE 1 END, e.watch_ms, e.completed, h.event_id IS NOT NULL
       FROM erased e LEFT JOIN held h USING (event_id)""",
)

# The (subject, metric)s the ledger counts the person in, and whether the last release counted them.
_COUNTED_IN = (
    """CREATE TEMP TABLE erased_counts (
           subject_id text COLLATE "C", metric "char", released boolean, following boolean
       ) ON COMMIT DROP""",
    """INSERT INTO erased_counts
       SELECT l.video_id, l.metric, t.released_seq > 0 AND min(coalesce(l.arrival, 0)) <= t.released_arrival, NULL
       FROM video_people l JOIN live_totals t ON t.subject_id = l.video_id AND t.metric = l.metric
       WHERE l.actor_id = $1
       GROUP BY l.video_id, l.metric, t.released_seq, t.released_arrival
       UNION ALL
       SELECT f.creator_id, 'f', t.released_seq > 0 AND coalesce(f.arrival, 0) <= t.released_arrival, f.following
       FROM follow_state f JOIN live_totals t ON t.subject_id = f.creator_id AND t.metric = 'f'
       WHERE f.actor_id = $1
       UNION ALL
       -- A creator's audience (migration 0023): counted from their first row in its ledger.
       SELECT l.creator_id, 'a', t.released_seq > 0 AND min(coalesce(l.arrival, 0)) <= t.released_arrival, NULL
       FROM creator_viewers l JOIN live_totals t ON t.subject_id = l.creator_id AND t.metric = 'a'
       WHERE l.actor_id = $1
       GROUP BY l.creator_id, t.released_seq, t.released_arrival""",
)

# Where they are not yet released, their part goes, as apply_arrival() (migrations 0011 and 0015)
# added it: one person and their applied events (for a creator's followers, whether they follow
# now) in the totals, and their watch time up to the cap in a video's capped sum, as their row in
# the ledger of viewers holds it (all they watched that was applied, whether or not its events are
# still stored); in each breakdown cell, one person per cell the ledgers have them in and their
# events there. What only they had brought is left empty, and goes: nothing of it was ever released.
_SETTLE_TOTALS = """
UPDATE live_totals t
SET people = t.people - 1,
    -- A creator's followers count them if they follow; a creator's audience counts each viewer once.
    events = t.events - coalesce(mine.events, CASE WHEN c.following OR c.metric = 'a' THEN 1 ELSE 0 END),
    -- Only views carry watch time (least() ignores a NULL: without the CASE every metric would lose a cap).
    watch_capped_ms = t.watch_capped_ms - CASE WHEN c.metric = 'v' THEN coalesce(least(viewer.watch_ms, watch_cap_ms()), 0) ELSE 0 END
FROM erased_counts c
LEFT JOIN (SELECT video_id, metric, sum(events) AS events
           FROM erased_events WHERE NOT held AND metric IS NOT NULL
           GROUP BY 1, 2) mine ON mine.video_id = c.subject_id AND mine.metric = c.metric
LEFT JOIN video_viewers viewer ON viewer.video_id = c.subject_id AND c.metric = 'v' AND viewer.actor_id = $1
WHERE NOT c.released AND t.subject_id = c.subject_id AND t.metric = c.metric
"""
_SETTLE_CELLS = """
WITH their_part AS (
    SELECT DISTINCT l.video_id AS subject_id, l.metric, d.dimension, d.value, 1 AS people, 0 AS events
    FROM video_people l
    -- The ledger keeps no channel for an anonymous share: its cell is 'undisclosed' (migration 0018).
    CROSS JOIN LATERAL (VALUES ('c'::"char", coalesce(l.channel::text, 'undisclosed')), ('r', l.region), ('a', l.age_band),
                               ('s', l.sentiment::text)) AS d (dimension, value)
    WHERE l.actor_id = $1 AND d.value IS NOT NULL
    UNION ALL
    -- A viewer is one person in each completion cell a view of theirs landed in (migration 0015).
    SELECT w.video_id, 'v', 'w', d.value, 1, 0
    FROM video_viewers w
    CROSS JOIN LATERAL (VALUES (CASE WHEN w.completed THEN 'completed' END),
                               (CASE WHEN w.not_completed THEN 'not_completed' END)) AS d (value)
    WHERE w.actor_id = $1 AND d.value IS NOT NULL
    UNION ALL
    -- A viewer is one viewer (people and events alike) in the depth cell the ledger has them in (0023).
    SELECT w.video_id, 'v', 'd', depth_cell(w.depth), 1, 1
    FROM video_viewers w
    WHERE w.actor_id = $1 AND w.depth IS NOT NULL
    UNION ALL
    -- And one viewer in each hour of the week their creator's audience has them in.
    SELECT l.creator_id, 'a', 'h', l.hour_of_week::text, 1, 1
    FROM creator_viewers l
    WHERE l.actor_id = $1
    UNION ALL
    SELECT e.video_id, e.metric, d.dimension, d.value, 0, d.events
    FROM erased_events e
    CROSS JOIN LATERAL (VALUES ('c'::"char", e.channel, e.events), ('r', e.region, e.events), ('a', e.age_band, e.events),
                               ('s', e.sentiment, e.events),
                               ('w', CASE WHEN e.completed THEN 'completed' ELSE 'not_completed' END, 1)) AS d (dimension, value, events)
    WHERE NOT e.held AND e.metric IS NOT NULL AND d.value IS NOT NULL
), unreleased AS (
    SELECT p.subject_id, p.metric, p.dimension, p.value, sum(p.people) AS people, sum(p.events) AS events
    FROM their_part p
    JOIN metric_dimensions m ON m.metric = p.metric AND m.dimension = p.dimension
    JOIN erased_counts c ON c.subject_id = p.subject_id AND c.metric = p.metric AND NOT c.released
    GROUP BY 1, 2, 3, 4
)
UPDATE live_cells l SET people = l.people - u.people, events = l.events - u.events
FROM unreleased u
WHERE l.subject_id = u.subject_id AND l.metric = u.metric AND l.dimension = u.dimension AND l.value = u.value
"""
_DROP_EMPTY = (
    """DELETE FROM live_cells l USING erased_counts c
       WHERE NOT c.released AND l.subject_id = c.subject_id AND l.metric = c.metric AND l.people = 0 AND l.events = 0""",
    """DELETE FROM live_totals t USING erased_counts c
       WHERE NOT c.released AND t.subject_id = c.subject_id AND t.metric = c.metric AND t.released_seq = 0 AND t.people = 0""",
)

_FORGET = (
    "DELETE FROM video_people WHERE actor_id = $1",
    "DELETE FROM video_viewers WHERE actor_id = $1",
    "DELETE FROM follow_state WHERE actor_id = $1",
    "DELETE FROM creator_viewers WHERE actor_id = $1",
)
# As `gateway apps revoke` does (gateway.store.apps): the generation moves on, so tokens issued
# under the grant, OAuth families included, stay refused even if the person authorizes the app again.
_REVOKE_GRANTS = """
UPDATE app_authorizations SET scopes = '{}', generation = generation + 1, revoked_at = now()
WHERE user_id = $1 AND cardinality(scopes) > 0
"""
_LAST_ERASURE = "SELECT erasure_id, erased_at, erased_by FROM erasures WHERE subject_key = $1 ORDER BY erased_at DESC LIMIT 1"
# A repeated erasure's moment, stamped like a record's below.
_COVER = "UPDATE erasures SET covers_until = clock_timestamp() WHERE erasure_id = $1"
# Stamped when it is written, the last thing before the commit, not when the transaction began: what
# the person did while the erasure waited for its locks (a request their grant still allowed, an
# event) is before it, and is left out of the decision log and of late ingest like the rest.
_RECORD = """
INSERT INTO erasures (erasure_id, erased_at, erased_by, reason, subject_key) VALUES ($1, clock_timestamp(), $2, $3, $4)
RETURNING erasure_id, erased_at, erased_by
"""


def _count(status: str) -> int:
    """The row count of a command's status ("DELETE 3", "UPDATE 1", "INSERT 0 2")."""
    return int(status.rsplit(" ", 1)[-1])


async def erase_person(conn: asyncpg.Connection, person_id: str, *, key: bytes, erased_by: str, reason: str | None) -> ErasureReceipt:
    """Erases `person_id` over a `gateway_eraser` connection (row-level security binds it to them),
    in one transaction, under the arrival lock: no arrival is applied while their part of the live
    totals is settled. `key` is subject_key(...) of the person."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('gateway.actor_id', $1, true)", person_id)
        # First the batches checking their actors against the erasures finish (they hold it shared).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ERASURE_LOCK)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
        last = await conn.fetchrow(_LAST_ERASURE, key)
        create, take = _TAKE_EVENTS
        await conn.execute(create)
        events = _count(await conn.execute(take, person_id))
        create, collect = _COUNTED_IN
        await conn.execute(create)
        await conn.execute(collect, person_id)
        await conn.execute(_SETTLE_TOTALS, person_id)
        await conn.execute(_SETTLE_CELLS, person_id)
        for statement in _DROP_EMPTY:
            await conn.execute(statement)
        removed = events
        for statement in _FORGET:
            removed += _count(await conn.execute(statement, person_id))
        grants = _count(await conn.execute(_REVOKE_GRANTS, person_id))
        removed += grants
        # Their own requests in the policy decision log (migration 0022).
        removed += await conn.fetchval("SELECT forget_decisions_of($1)", person_id)
        for rows in PERSONAL_ROWS:
            removed += _count(await conn.execute(rows.delete, person_id))
        if removed == 0 and last is not None:
            # Nothing left: the same receipt. What the person did since that erasure and has not
            # reached a table yet (a request the decision log's writer holds, a late event) is
            # covered all the same (migration 0027).
            await conn.execute(_COVER, last["erasure_id"])
            return ErasureReceipt(str(last["erasure_id"]), last["erased_at"], last["erased_by"], repeated=True, events=0, app_grants=0)
        record = await conn.fetchrow(_RECORD, uuid.uuid4(), erased_by, reason, key)
    return ErasureReceipt(str(record["erasure_id"]), record["erased_at"], record["erased_by"], repeated=False, events=events, app_grants=grants)
