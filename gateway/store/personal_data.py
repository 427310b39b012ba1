"""A person's own rows, wherever the store keeps them: what an access request exports (`gateway
export-user`) and an erasure removes (gateway.store.erasure).

Events, the ledgers of people, viewers and followers, and app grants each need handling of their
own (erasure takes a person out of the live counts, and revokes grants rather than forgetting
them). Every other table that holds rows of one person, keyed by a column naming them, is listed
in PERSONAL_ROWS: an entry there is exported under its name and deleted on erasure, and nothing
else is needed but the eraser's privilege on the table (`GRANT SELECT, DELETE ON … TO
gateway_eraser`, in the migration that makes it), as the sharers' consent changes do (0020).

tests/store/test_personal_data.py fails while a table with a column naming a person is neither
listed here nor handled on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from gateway.store import queries

__all__ = ["PERSONAL_ROWS", "PersonalRows", "export_person", "to_json"]


@dataclass(frozen=True)
class PersonalRows:
    """A table whose rows, keyed by `person_column`, each belong to one person; exported as `name`."""

    name: str
    table: str
    person_column: str

    @property
    def select(self) -> str:
        # Names come from the constants below, never from input; the person is a parameter.
        return f"SELECT * FROM {self.table} WHERE {self.person_column} = $1"

    @property
    def delete(self) -> str:
        return f"DELETE FROM {self.table} WHERE {self.person_column} = $1"


PERSONAL_ROWS: tuple[PersonalRows, ...] = (
    # What apps acting for the person spent of their daily ε budget (migration 0007).
    PersonalRows("app_budget_spend", "privacy_spend", "user_id"),
    # Every change the person made to their consent settings (migration 0018): the audit of their choices.
    PersonalRows("consent_changes", "consent_changes", "user_id"),
)

_EVENTS = """
SELECT event_id, type::text AS type, occurred_at, ingested_at, video_id, creator_id, channel::text AS channel,
       region, age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment::text AS sentiment
FROM events WHERE actor_id = $1
ORDER BY occurred_at, event_id
"""
# The ledger of viewers (migration 0015): all they watched of each video, whether a view of theirs
# was watched to the end and whether one was not. It outlives the views it sums, once retention
# drops them.
_VIDEOS_WATCHED = """
SELECT video_id, watch_ms, completed, not_completed, longest_view_ms, depth FROM video_viewers WHERE actor_id = $1 ORDER BY video_id
"""
# The ledger of creators' audiences (migration 0023): the hours of the week (UTC, 0 = Monday 00:00)
# in which the person viewed each creator's videos.
_CREATORS_WATCHED = """
SELECT creator_id, hour_of_week FROM creator_viewers WHERE actor_id = $1 ORDER BY creator_id, hour_of_week
"""
# The ledgers of people and followers (migration 0011): every video the person was counted on, by
# metric (v views, l likes, c comments, s shares) and the cell they were counted in, and whom they
# follow now. They outlive the events once retention drops them.
_COUNTED_ON = """
SELECT video_id, metric::text AS metric, region, age_band, channel::text AS channel, sentiment::text AS sentiment
FROM video_people WHERE actor_id = $1 ORDER BY video_id, metric, region, age_band, channel, sentiment
"""
_FOLLOWING = "SELECT creator_id, following, state_at FROM follow_state WHERE actor_id = $1 ORDER BY creator_id"
# Their own requests in the policy decision log (as a user, or through an app acting for them), as
# the log keeps them: the question (operation and fields, with their arguments) and the decision.
_REQUESTS = """
SELECT l.decision_id, l.timestamp, l.revision, l.path, l.principal, q.body AS question, r.body AS result, l.denied
FROM decision_log l
JOIN decision_bodies q ON q.digest = l.question
JOIN decision_bodies r ON r.digest = l.result
WHERE l.principal ->> 'id' = $1 AND l.principal ->> 'kind' IN ('user', 'app')
ORDER BY l.timestamp, l.decision_id
"""
_TOKEN_FAMILIES = """
SELECT family_id, app_id, scopes, created_at, revoked_at, revoked_reason
FROM oauth_token_families WHERE user_id = $1 ORDER BY created_at, family_id
"""
_APP_GRANTS = """
SELECT a.app_id, p.name AS app_name, a.scopes, a.authorized_at, a.revoked_at
FROM app_authorizations a JOIN apps p USING (app_id)
WHERE a.user_id = $1
ORDER BY a.authorized_at, a.app_id
"""
_ERASURES = "SELECT erasure_id, erased_at FROM erasures WHERE subject_key = $1 ORDER BY erased_at"


async def export_person(conn: asyncpg.Connection, person_id: str, subject_key: bytes, now: datetime) -> dict[str, Any]:
    """Everything the store holds of `person_id`, over the owner's connection: their events (every
    type, as stored), their activity as `me` serves it, their rows in the ledgers of viewers, people
    and followers, the apps they authorized and the OAuth token families issued to them, their
    requests in the policy decision log, the rows of PERSONAL_ROWS, and whether they were ever erased
    (`subject_key`: gateway.store.erasure)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        events = [_row(record) for record in await conn.fetch(_EVENTS, person_id)]
        shares = await queries.my_shares(conn, person_id, None)
        likes = await queries.my_likes(conn, person_id, None)
        follows = await queries.my_follows(conn, person_id, None)
        watched = [_row(record) for record in await conn.fetch(_VIDEOS_WATCHED, person_id)]
        counted_on = [_row(record) for record in await conn.fetch(_COUNTED_ON, person_id)]
        following = [_row(record) for record in await conn.fetch(_FOLLOWING, person_id)]
        creators = [_row(record) for record in await conn.fetch(_CREATORS_WATCHED, person_id)]
        grants = [_row(record) for record in await conn.fetch(_APP_GRANTS, person_id)]
        families = [_row(record) for record in await conn.fetch(_TOKEN_FAMILIES, person_id)]
        requests = [_decoded(record) for record in await conn.fetch(_REQUESTS, person_id)]
        personal = {rows.name: [_row(record, without=rows.person_column) for record in await conn.fetch(rows.select, person_id)] for rows in PERSONAL_ROWS}
        erasures = [_row(record) for record in await conn.fetch(_ERASURES, subject_key)]
    return {
        "user_id": person_id,
        "exported_at": now,
        "events": events,
        "activity": {
            "shares": [{"video_id": r["video_id"], "channel": r["channel"], "shared_at": r["occurred_at"]} for r in shares],
            "likes": [{"video_id": r["video_id"], "liked_at": r["occurred_at"]} for r in likes],
            "follows": [{"creator_id": r["creator_id"], "followed_at": r["occurred_at"]} for r in follows],
        },
        "videos_watched": watched,
        "counted_on": counted_on,
        "following": following,
        "creators_watched": creators,
        "app_grants": grants,
        "oauth_token_families": families,
        "policy_decisions": requests,
        **personal,
        # When they were erased, if ever: whatever the export holds arrived after the last of these.
        "erasures": erasures,
    }


def _row(record: asyncpg.Record, without: str | None = None) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != without}


def _decoded(record: asyncpg.Record) -> dict[str, Any]:
    """A logged decision with its JSON columns as JSON, not as strings of it."""
    return {key: json.loads(value) if key in ("principal", "question", "result") else value for key, value in record.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def to_json(export: dict[str, Any]) -> str:
    """The export as JSON: times in ISO 8601, ε as decimal strings, digests in hex."""
    return json.dumps(export, default=_plain, ensure_ascii=False, indent=2) + "\n"
