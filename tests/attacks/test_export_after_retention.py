"""Red team (issue 14): `gateway export-user` is to write "everything the store holds of the person".

Once retention drops the months of a person's events, the store still holds, in its ledgers, which
videos they shared (and on which channel), liked and commented on, with their region and age band
(`video_people`), and which creators they follow and since when (`follow_state`); an erasure takes
these rows (they are the person's), but the export shows none of them: its shares, likes and follows
are read from the events alone. Only the ledger of viewers (`videos_watched`) is exported.

Against a real `gateway serve`: u77's export listed 7 shares and 2 follows
before `gateway retention`, none after, while `video_people` kept 26 rows of theirs (shares of v8
by copy_link and whatsapp among them) and `follow_state` their follows of u8 and u4.

Fixed: the export holds the ledgers' rows of the person."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.store.erasure import derive_erasure_key, subject_key
from gateway.store.personal_data import export_person, to_json
from gateway.store.retention import drop_expired_events

from conftest import SECRET
from harness import Gateway

KEY = derive_erasure_key(SECRET)
PERSON = "rt14-p"
JANUARY = "2025-01-15T12:00:00Z"


def happened(type_: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": JANUARY, "creator_id": "rt14-c", "actor_id": PERSON, **fields}


async def test_the_export_holds_what_the_ledgers_keep_of_the_person_after_retention(gateway: Gateway, admin: asyncpg.Connection) -> None:
    await gateway.backfill([
        happened("share", "rt14-s", video_id="rt14-v1", channel="whatsapp", region="DE", age_band="25-34"),
        happened("like", "rt14-l", video_id="rt14-v2", region="DE", age_band="25-34"),
        happened("follow", "rt14-f"),
    ])
    async with gateway.store.eraser.acquire() as conn:
        await drop_expired_events(conn, datetime(2025, 3, 1, tzinfo=UTC))
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = $1", PERSON) == 0
    kept = await admin.fetchval("SELECT count(*) FROM video_people WHERE actor_id = $1", PERSON)
    follows = await admin.fetchval("SELECT count(*) FROM follow_state WHERE actor_id = $1", PERSON)
    assert kept == 2 and follows == 1, "the ledgers keep the person's share, like and follow after retention"

    exported = json.loads(to_json(await export_person(admin, PERSON, subject_key(KEY, PERSON), datetime.now(UTC))))

    text = json.dumps(exported)
    assert "whatsapp" in text and "rt14-v2" in text and "rt14-c" in text, f"the export shows none of it: {exported['activity']}"
