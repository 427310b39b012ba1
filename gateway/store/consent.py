"""Sharers' consent in the store (migration 0018): the audit of changes, the settings in force, and
the sharers who chose to be shown to a creator.

A user's own rows are read and appended through the private pool, bound to the user by
row-level security as `me` is (gateway.store.queries). The sharers shown to a creator come from a
function the reader role may call, which returns those users' ids and no one else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from gateway.clock import Clock

__all__ = ["MAX_SHARERS", "Setting", "Visibility", "anonymous_shares", "consented_sharers", "record_change", "visible_to"]

# Most sharers one request lists (consented_sharers() holds to it too).
MAX_SHARERS = 100


class Setting(StrEnum):
    ANONYMOUS_SHARES = "anonymous_shares"
    VISIBLE_TO = "visible_to"


@dataclass(frozen=True, slots=True)
class Visibility:
    """A creator a user may be shown to, since when."""

    creator_id: str
    since: datetime


async def _bind(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute("SELECT set_config('gateway.actor_id', $1, true)", user_id)


# A change that changes nothing is not one: the audit holds changes only. A user's changes are
# stamped in the order they are made (one at a time, under a lock of theirs), each after the one
# before even if this replica's clock is behind another's: "the setting as of a moment" reads the
# stamps (anonymous_shares_at()), and the latest stamp is the setting in force. The stamp is read
# once the lock is held, in the transaction that commits it: read before, a change that waited for
# another was stamped before it could be made. (A share received between the stamp and the commit
# keeps what ingest decided then: decisions are never taken again, store_batch.sql.)
_RECORD_CHANGE = """
WITH standing AS (
    SELECT value FROM consent_settings
    WHERE user_id = $1 AND setting = $2::consent_setting AND creator_id IS NOT DISTINCT FROM $3
), last_change AS (
    SELECT max(changed_at) AS changed_at FROM consent_changes WHERE user_id = $1
)
INSERT INTO consent_changes (user_id, setting, creator_id, value, changed_at, changed_by)
SELECT $1, $2::consent_setting, $3, $4, greatest($5, last_change.changed_at + interval '1 microsecond'), $6
FROM last_change
WHERE $4 IS DISTINCT FROM coalesce((SELECT value FROM standing), false)
RETURNING change_id
"""


async def record_change(
    conn: asyncpg.Connection,
    user_id: str,
    setting: Setting,
    creator_id: str | None,
    value: bool,
    clock: Clock,
    changed_by: str,
) -> bool:
    """Appends `user_id`'s change of `setting` (toward `creator_id`, for visibility) to `value`,
    made by a principal of kind `changed_by` and stamped by `clock` once it holds the user's lock;
    False when it is the setting in force already (nothing appended)."""
    async with conn.transaction():
        await _bind(conn, user_id)
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consent of ' || $1, 0))", user_id)
        appended = await conn.fetchval(_RECORD_CHANGE, user_id, setting.value, creator_id, value, clock(), changed_by)
    return appended is not None


async def anonymous_shares(conn: asyncpg.Connection, user_id: str) -> bool:
    """Whether `user_id`'s shares are anonymous now."""
    async with conn.transaction(readonly=True):
        await _bind(conn, user_id)
        value = await conn.fetchval(
            "SELECT value FROM consent_settings WHERE user_id = $1 AND setting = 'anonymous_shares'", user_id
        )
    return bool(value)


async def visible_to(conn: asyncpg.Connection, user_id: str, limit: int) -> list[Visibility]:
    """The creators `user_id` may be shown to now, most recent consent first."""
    async with conn.transaction(readonly=True):
        await _bind(conn, user_id)
        rows = await conn.fetch(
            """SELECT creator_id, changed_at FROM consent_settings
               WHERE user_id = $1 AND setting = 'visible_to' AND value
               ORDER BY changed_at DESC, creator_id LIMIT $2""",
            user_id,
            limit,
        )
    return [Visibility(row["creator_id"], row["changed_at"]) for row in rows]


async def consented_sharers(conn: asyncpg.Connection, video_id: str, creator_id: str, after: str | None, limit: int) -> list[str]:
    """The sharers of `video_id` shown to `creator_id` (its creator, or nobody is): those whose
    consent toward the creator stands now, ids after `after`, in order, at most `limit`."""
    rows = await conn.fetch("SELECT user_id FROM consented_sharers($1, $2, $3, $4)", video_id, creator_id, after, limit)
    return [row["user_id"] for row in rows]
