"""The decision log's writer: a batch is one call (append_decisions, migration 0028) that leaves out
the requests people made before their erasure, writes each body the store lacks, sends no body the
writer has seen stored (and sends again one an erasure deleted since), and lets no record the store
refuses hold back the rest."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import uuid_utils
from asyncpg.connection import LoggedQuery

from gateway.policy.decider import DecisionRecord
from gateway.policy.decision import ENTRYPOINT
from gateway.store.decision_log import DecisionLogWriter
from gateway.store.erasure import derive_erasure_key, subject_key
from gateway.store.pools import Store, open_pool

from conftest import SECRET

KEY = derive_erasure_key(SECRET)
ERASED_AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)
RESULT = b'{"fields":{}}'


def question(name: str) -> bytes:
    return b'{"operation":{"name":"%s"},"fields":[]}' % name.encode()


def decision(principal: bytes, asker: str | None, at: datetime, asked: bytes) -> DecisionRecord:
    return DecisionRecord(
        str(uuid_utils.uuid7()), at, "r1", ENTRYPOINT, principal, asker, asked, hashlib.sha256(asked).digest(),
        RESULT, hashlib.sha256(RESULT).digest(), False, False, 1.0,
    )


def user(person: str) -> bytes:
    return b'{"kind":"user","id":"%s","scopes":[]}' % person.encode()


async def empty_log(admin: asyncpg.Connection) -> None:
    """No decisions, no bodies, and one erasure: of "erased", at ERASED_AT."""
    await admin.execute("TRUNCATE decision_log, decision_bodies, erasures")
    await admin.execute(
        "INSERT INTO erasures (erasure_id, erased_at, erased_by, subject_key) VALUES ($1, $2, 'compliance-1', $3)",
        uuid.uuid4(), ERASED_AT, subject_key(KEY, "erased"),
    )


@pytest.fixture
async def writer(store: Store, admin: asyncpg.Connection) -> DecisionLogWriter:
    await empty_log(admin)
    return DecisionLogWriter(store.ingest, erasure_key=KEY)


@dataclass
class Spied:
    writer: DecisionLogWriter
    # The bodies each call of append_decisions was sent, in order (asyncpg's query logger sees them).
    sent: list[set[bytes]]


@pytest.fixture
async def spied(database_url: str, admin: asyncpg.Connection) -> AsyncIterator[Spied]:
    await empty_log(admin)
    sent: list[set[bytes]] = []

    def seen(query: LoggedQuery) -> None:
        if "append_decisions" in query.query:
            sent.append({body.encode() for body in query.args[13]})

    async def spy(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(seen)

    pool = await open_pool(database_url, SECRET, "gateway_ingest", min_size=1, max_size=1, init=spy)
    yield Spied(DecisionLogWriter(pool, erasure_key=KEY), sent)
    await pool.close()


async def logged(admin: asyncpg.Connection) -> set[str]:
    return {str(row["decision_id"]) for row in await admin.fetch("SELECT decision_id FROM decision_log")}


async def bodies(admin: asyncpg.Connection) -> set[bytes]:
    return {row["body"].encode() for row in await admin.fetch("SELECT body::text AS body FROM decision_bodies")}


async def test_a_batch_leaves_out_what_erased_people_asked_before_their_erasure_and_the_bodies_only_they_named(
    writer: DecisionLogWriter, admin: asyncpg.Connection
) -> None:
    app = b'{"kind":"app","id":"erased","scopes":["stats:read"],"app":"app-1"}'
    before = decision(user("erased"), "erased", ERASED_AT - SECOND, question("only-theirs"))
    through_an_app = decision(app, "erased", ERASED_AT, question("only-theirs"))
    shared = decision(user("erased"), "erased", ERASED_AT - SECOND, question("shared"))
    after = decision(user("erased"), "erased", ERASED_AT + SECOND, question("after"))
    other = decision(user("other"), "other", ERASED_AT - SECOND, question("shared"))
    auditor = decision(b'{"kind":"compliance","id":"erased","scopes":[]}', None, ERASED_AT - SECOND, question("audit"))
    for record in (before, through_an_app, shared, after, other, auditor):
        writer.record(record)

    await writer.flush()

    assert await logged(admin) == {after.decision_id, other.decision_id, auditor.decision_id}
    assert await bodies(admin) == {question("shared"), question("after"), question("audit"), RESULT}
    assert (writer.written, writer.dropped_erased, writer.dropped) == (3, 3, 0)


async def test_a_body_the_store_has_is_not_written_again(writer: DecisionLogWriter, admin: asyncpg.Connection) -> None:
    asked = question("again")
    first, second = (decision(user("someone"), "someone", ERASED_AT, asked) for _ in range(2))
    writer.record(first)
    await writer.flush()
    await admin.execute("UPDATE decision_bodies SET body = '{\"kept\": true}' WHERE digest = $1", hashlib.sha256(asked).digest())

    writer.record(second)
    await writer.flush()

    assert await logged(admin) == {first.decision_id, second.decision_id}
    assert b'{"kept": true}' in await bodies(admin)


async def test_a_body_the_writer_has_seen_stored_is_not_sent_again(spied: Spied, admin: asyncpg.Connection) -> None:
    first = decision(user("someone"), "someone", ERASED_AT, question("again"))
    spied.writer.record(first)
    await spied.writer.flush()
    later = [decision(user("someone"), "someone", ERASED_AT, question("again")), decision(user("other"), "other", ERASED_AT, question("new"))]
    for record in later:
        spied.writer.record(record)

    await spied.writer.flush()

    assert spied.sent == [{question("again"), RESULT}, {question("new")}]
    assert await logged(admin) == {first.decision_id, *(record.decision_id for record in later)}
    assert await bodies(admin) == {question("again"), question("new"), RESULT}


async def test_a_body_deleted_since_the_writer_saw_it_stored_is_sent_again_and_nothing_is_written_without_it(
    spied: Spied, admin: asyncpg.Connection
) -> None:
    first = decision(user("someone"), "someone", ERASED_AT, question("again"))
    spied.writer.record(first)
    await spied.writer.flush()
    # As an erasure in another process deletes the bodies only its person's requests named (0025).
    await admin.execute("DELETE FROM decision_bodies WHERE digest = $1", first.question_digest)
    second = decision(user("other"), "other", ERASED_AT, question("again"))
    spied.writer.record(second)

    await spied.writer.flush()

    # The store named the body it lacked and wrote nothing; the batch went again with its bodies.
    assert spied.sent[1:] == [set(), {question("again"), RESULT}]
    assert await logged(admin) == {first.decision_id, second.decision_id}
    assert await bodies(admin) == {question("again"), RESULT}
    assert (spied.writer.written, spied.writer.dropped) == (2, 0)


async def test_one_record_the_store_refuses_does_not_hold_back_the_rest(writer: DecisionLogWriter, admin: asyncpg.Connection) -> None:
    good = [decision(user(f"person-{n}"), f"person-{n}", ERASED_AT, question(f"good-{n}")) for n in range(3)]
    refused = decision(b'{"kind": "user", "id": ', "someone", ERASED_AT, question("refused"))
    for record in (good[0], refused, *good[1:]):
        writer.record(record)

    await writer.flush()

    assert await logged(admin) == {record.decision_id for record in good}
    assert question("refused") not in await bodies(admin)
    assert (writer.written, writer.dropped) == (3, 1)
