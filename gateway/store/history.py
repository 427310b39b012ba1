"""What ingest needs of the release history: its lock, setting its k, and which subjects already have one."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

__all__ = ["ARRIVAL_LOCK", "ERASURE_LOCK", "set_history_k", "subjects_with_history"]

# Held while an arrival is applied (live or replayed): whether a person is new is read from the
# committed ledger, so arrivals are applied one at a time.
ARRIVAL_LOCK = 7310151952298631524
# Shared by every ingest batch from before it checks its actors against the erasures to its commit,
# exclusive for an erasure (taken before ARRIVAL_LOCK): an erasure waits for the batches in flight,
# and a batch that starts after it sees its record, so no event an erased person made before their
# erasure is stored between the check and the commit (gateway.store.ingest).
ERASURE_LOCK = 7310151952298631525


async def set_history_k(conn: asyncpg.Connection, k: int) -> bool:
    """Makes later releases steps of `k` people; returns whether that changed it. Releases
    already made stay as they are: every one of them is a step of the k it was made under."""
    changed: bool = await conn.fetchval(
        "WITH changed AS (UPDATE release_settings SET k = $1 WHERE k <> $1 RETURNING 1) SELECT EXISTS (SELECT FROM changed)", k
    )
    return changed


async def subjects_with_history(
    conn: asyncpg.Connection, video_ids: Iterable[str], creator_ids: Iterable[str]
) -> tuple[set[str], set[str]]:
    """Of the videos and creators named, those with any release (their followers', for creators)."""
    rows = await conn.fetch(
        """SELECT DISTINCT q.subject_id, q.followers
           FROM (SELECT unnest($1::text[]), false UNION ALL SELECT unnest($2::text[]), true) AS q (subject_id, followers)
           WHERE EXISTS (SELECT FROM live_totals t
                         WHERE t.subject_id = q.subject_id AND (t.metric = 'f') = q.followers AND t.released_seq > 0)""",
        list(video_ids),
        list(creator_ids),
    )
    videos = {row[0] for row in rows if not row[1]}
    creators = {row[0] for row in rows if row[1]}
    return videos, creators
