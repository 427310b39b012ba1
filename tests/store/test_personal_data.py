"""An access request's export holds all of one person's rows and nobody else's, and every table that
names a person is exported and erased, or kept on purpose."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from gateway.store.apps import authorize_app, register_app, revoke_app
from gateway.store.erasure import derive_erasure_key, erase_person, subject_key
from gateway.store.ingest import EventWriter
from gateway.store.personal_data import PERSONAL_ROWS, export_person, to_json
from gateway.store.pools import Store

from conftest import SECRET
from helpers import event, ingest, records, truncate_all, utc

KEY = derive_erasure_key(SECRET)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
async def writer(store: Store, admin: asyncpg.Connection) -> EventWriter:
    await truncate_all(admin)
    return EventWriter(store.ingest)


async def export(admin: asyncpg.Connection, person: str) -> dict[str, Any]:
    """The export as the file says it: through JSON."""
    loaded: dict[str, Any] = json.loads(to_json(await export_person(admin, person, subject_key(KEY, person), NOW)))
    return loaded


async def test_the_export_holds_the_persons_events_activity_grants_and_budget_and_nobody_elses(
    writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await ingest(writer, [
        event("view", "e1", utc(2025, 5, 1, 9), video_id="v1", actor_id="p1", watch_ms=4200, completed=True, region="DE"),
        event("share", "e2", utc(2025, 5, 1, 10), video_id="v1", actor_id="p1", channel="email"),
        event("like", "e3", utc(2025, 5, 1, 11), video_id="v2", actor_id="p1"),
        event("follow", "e4", utc(2025, 5, 1, 12), creator_id="c9", actor_id="p1"),
        event("comment", "e5", utc(2025, 5, 1, 13), video_id="v1", actor_id="someone-else", text="not theirs"),
    ])
    await writer.hold(records([event("view", "e6", utc(2025, 4, 2, 9), video_id="v3", actor_id="p1")]))
    acme, other = await register_app(admin, "Acme"), await register_app(admin, "Other")
    await authorize_app(admin, acme, "p1", ["activity", "stats"])
    await authorize_app(admin, other, "p1", ["stats"])
    await revoke_app(admin, other, "p1")
    await authorize_app(admin, acme, "someone-else", ["stats"])
    await admin.execute("INSERT INTO privacy_spend VALUES ($1, 'p1', '2025-05-01', '\\x0102', 0.25), ($1, 'someone-else', '2025-05-01', '\\x01', 1)", acme)

    exported = await export(admin, "p1")

    assert exported["user_id"] == "p1" and exported["exported_at"] == NOW.isoformat()
    assert [(e["event_id"], e["type"]) for e in exported["events"]] == [
        ("e6", "view"), ("e1", "view"), ("e2", "share"), ("e3", "like"), ("e4", "follow")
    ]
    assert exported["events"][1] == {
        "event_id": "e1", "type": "view", "occurred_at": "2025-05-01T09:00:00+00:00", "ingested_at": exported["events"][1]["ingested_at"],
        "video_id": "v1", "creator_id": "c1", "channel": None, "region": "DE", "age_band": None, "watch_ms": 4200,
        "completed": True, "text": None, "anonymous": None, "duration_ms": None, "sentiment": None,
    }
    assert exported["activity"] == {
        "shares": [{"video_id": "v1", "channel": "email", "shared_at": "2025-05-01T10:00:00+00:00"}],
        "likes": [{"video_id": "v2", "liked_at": "2025-05-01T11:00:00+00:00"}],
        "follows": [{"creator_id": "c9", "followed_at": "2025-05-01T12:00:00+00:00"}],
    }
    # The ledger of viewers: applied views only (the held one has not arrived), and nobody else's.
    assert exported["videos_watched"] == [
        {"video_id": "v1", "watch_ms": 4200, "completed": True, "not_completed": False, "longest_view_ms": 4200, "depth": None}
    ]
    # The ledger of creators' audiences: the hour of the week of each view (Thursday 9:00 UTC).
    assert exported["creators_watched"] == [{"creator_id": "c1", "hour_of_week": 3 * 24 + 9}]
    grants = {g["app_name"]: (g["scopes"], g["revoked_at"] is None) for g in exported["app_grants"]}
    assert grants == {"Acme": (["activity", "stats"], True), "Other": ([], False)}
    assert exported["app_budget_spend"] == [{"app_id": acme, "day": "2025-05-01", "release": "0102", "epsilon": "0.25"}]
    assert exported["erasures"] == []
    assert "not theirs" not in to_json(await export_person(admin, "p1", subject_key(KEY, "p1"), NOW))


async def test_the_export_of_an_erased_person_says_when_and_holds_only_what_arrived_since(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await ingest(writer, [event("view", "before", utc(2025, 5, 1, 9), actor_id="p1")])
    async with store.eraser.acquire() as conn:
        receipt = await erase_person(conn, "p1", key=subject_key(KEY, "p1"), erased_by="compliance:dpo", reason=None)
    await ingest(writer, [event("view", "after", utc(2025, 5, 1, 10), actor_id="p1")])

    exported = await export(admin, "p1")

    assert [e["event_id"] for e in exported["events"]] == ["after"]
    assert exported["videos_watched"] == [
        {"video_id": "v1", "watch_ms": 1000, "completed": False, "not_completed": True, "longest_view_ms": 1000, "depth": None}
    ]
    assert exported["erasures"] == [{"erasure_id": receipt.erasure_id, "erased_at": receipt.erased_at.isoformat()}]


# Tables with a column naming a person that erasure handles by itself (gateway.store.erasure), or
# keeps on purpose; every other one must be in PERSONAL_ROWS.
HANDLED = {
    ("events", "actor_id"): "deleted; exported",
    ("arrivals_pending", "actor_id"): "deleted with the events they copy",
    ("video_people", "actor_id"): "the ledger: deleted, once the person is taken out of what was not released",
    ("follow_state", "actor_id"): "the ledger of followers: likewise",
    ("video_viewers", "actor_id"): "the ledger of viewers (watch time, completion): likewise; exported",
    ("creator_viewers", "actor_id"): "the ledger of creators' audiences (hours of the week): likewise; exported",
    ("app_authorizations", "user_id"): "revoked, not deleted: its generation keeps the tokens issued under it refused; exported",
    ("oauth_token_families", "user_id"): "ended by the grant's revocation (its generation); the OAuth tables are the OAuth endpoints'",
}
PERSON_COLUMNS = ("actor_id", "user_id")


async def test_every_table_naming_a_person_is_erased_and_exported_or_kept_on_purpose(admin: asyncpg.Connection) -> None:
    rows = await admin.fetch(
        """SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND a.attname = ANY($1::text[]) AND NOT a.attisdropped""",
        list(PERSON_COLUMNS),
    )
    naming = {(row[0], row[1]) for row in rows}
    listed = {(rows.table, rows.person_column) for rows in PERSONAL_ROWS}

    assert naming - set(HANDLED) == listed, "a table naming a person must join gateway.store.personal_data.PERSONAL_ROWS"
    assert set(HANDLED) <= naming
