"""Migrating is idempotent, safe to run concurrently, refuses a migration edited after it was applied,
and gives a store migrated from the hourly rollups its release histories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

import gateway.store.migrate as migrate_module
from gateway.ingest.events import EVENT_COLUMNS
from gateway.store.ingest import EventWriter, prepare_connection
from gateway.store.migrate import ROLES, MigrationError, migrate, migrations

from conftest import SECRET, drop_database, fresh_database
from helpers import assert_live_state_matches_events, event, ingest, records

ALL_MIGRATIONS = [f"{migration.version:04d}_{migration.name}" for migration in migrations()]


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Makes empty databases (no schema at all) and drops them after the test."""
    names: list[str] = []

    async def make() -> str:
        name, url = await fresh_database(server_url, None)
        names.append(name)
        return str(url)

    yield make
    for name in names:
        await drop_database(server_url, name)


async def schema(url: str) -> dict[str, Any]:
    """What a migrated database must agree on: columns with their types, migrations recorded, grants to the roles."""
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            """SELECT table_name, column_name, data_type, udt_name, is_nullable
               FROM information_schema.columns WHERE table_schema = 'public'"""
        )
        recorded = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        grants = await conn.fetch(
            """SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
               WHERE table_schema = 'public' AND grantee = ANY($1::text[])""",
            list(ROLES),
        )
    finally:
        await conn.close()
    return {
        "columns": {tuple(row) for row in columns},
        "migrations": [tuple(row) for row in recorded],
        "grants": {tuple(row) for row in grants},
    }


def expected_migrations() -> list[tuple[int, str, str]]:
    return [(migration.version, migration.name, migration.checksum) for migration in migrations()]


async def test_migrate_twice_applies_each_migration_once(empty_database: Callable[[], Awaitable[str]], template_url: str) -> None:
    url = await empty_database()

    first = await migrate(url, SECRET)
    second = await migrate(url, SECRET)

    assert first == ALL_MIGRATIONS
    assert second == []
    migrated = await schema(url)
    assert migrated["migrations"] == expected_migrations()
    assert migrated == await schema(template_url)


@pytest.mark.parametrize("runs", [pytest.param(2, id="two"), pytest.param(3, id="three")])
async def test_migrate_concurrently_applies_each_migration_once(
    empty_database: Callable[[], Awaitable[str]], template_url: str, runs: int
) -> None:
    url = await empty_database()

    applied = await asyncio.gather(*(migrate(url, SECRET) for _ in range(runs)))

    assert sorted(applied) == [[]] * (runs - 1) + [ALL_MIGRATIONS], "exactly one run should apply everything"
    migrated = await schema(url)
    assert migrated["migrations"] == expected_migrations()
    assert migrated == await schema(template_url)


async def test_migrate_refuses_a_migration_edited_after_it_was_applied(empty_database: Callable[[], Awaitable[str]]) -> None:
    url = await empty_database()
    await migrate(url, SECRET)
    edited = migrations()[1]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'checksum of the text it had then' WHERE version = $1", edited.version)
    finally:
        await conn.close()

    with pytest.raises(MigrationError, match=f"{edited.version:04d}_{edited.name}"):
        await migrate(url, SECRET)
    # The failed run let go of the migration lock: the next one fails the same way instead of waiting forever.
    with pytest.raises(MigrationError):
        await asyncio.wait_for(migrate(url, SECRET), timeout=30)


# A store as the hourly-rollup schema left it: its events, each batch stamped with when it was
# ingested. Batch 2 arrived later but carries events that occurred earlier.
BATCH_1 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BATCH_2 = datetime(2026, 11, 21, 16, 5, tzinfo=UTC)
STORED = [
    # (event id, type, occurred, video, actor, ingested)
    *[(f"a{n}", "view", datetime(2026, 11, 20, 8, n, tzinfo=UTC), "v-early", f"viewer-{n}", BATCH_1) for n in range(5)],
    *[(f"b{n}", "view", datetime(2026, 11, 20, 8, n, tzinfo=UTC), "v-split", f"viewer-{n}", BATCH_1) for n in range(3)],
    *[(f"c{n}", "view", datetime(2026, 11, 19, 7, n, tzinfo=UTC), "v-split", f"late-viewer-{n}", BATCH_2) for n in range(3)],
    *[(f"d{n}", "follow", datetime(2026, 11, 20, 8, n, tzinfo=UTC), None, f"fan-{n}", BATCH_1) for n in range(5)],
    ("d9", "unfollow", datetime(2026, 11, 18, 8, 0, tzinfo=UTC), None, "fan-0", BATCH_2),
]


async def test_migrating_an_existing_store_builds_its_histories_in_arrival_order(
    empty_database: Callable[[], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await empty_database()
    # A store as it stood before the history (later migrations build on it: 0016 on its ledger).
    before_history = [migration for migration in migrations() if migration.version < 11]
    monkeypatch.setattr(migrate_module, "migrations", lambda: before_history)
    await migrate(url, SECRET)
    conn = await asyncpg.connect(url)
    try:
        for event_id, kind, occurred, video, actor, ingested in STORED:
            await conn.execute("SELECT ensure_events_partition($1)", occurred)
            await conn.execute("INSERT INTO event_ids VALUES ($1, $2)", event_id, occurred)
            await conn.execute(
                """INSERT INTO events (event_id, type, occurred_at, video_id, creator_id, actor_id, watch_ms, ingested_at)
                   VALUES ($1, $2::text::event_type, $3, $4, 'c1', $5, CASE WHEN $2::text = 'view' THEN 1000 END, $6)""",
                event_id, kind, occurred, video, actor, ingested,
            )
        monkeypatch.undo()

        assert await migrate(url, SECRET) == [name for name in ALL_MIGRATIONS if name >= "0011"]

        releases = await conn.fetch("SELECT subject_id, metric::text, made_at, people, events FROM releases ORDER BY subject_id, seq")
        assert [tuple(row) for row in releases] == [
            # The creator's audience (migration 0023): viewer-0 … 4, on either video, counted once each;
            # the three late viewers are short of a second step.
            ("c1", "a", BATCH_1, 5, 5),
            # The unfollow arrived later but is dated before fan-0's follow: the follow stands, and no
            # new person arrived with it, so no second release.
            ("c1", "f", BATCH_1, 5, 5),
            ("v-early", "v", BATCH_1, 5, 5),
            ("v-split", "v", BATCH_2, 6, 6),  # three viewers, then three more: one step, when the second batch arrived
        ]
        assert await conn.fetchval("SELECT count(*) FROM arrivals_pending") == 0
    finally:
        await conn.close()


# A store whose history was made before watch time was capped per viewer (migration 0015): five
# viewers, one of whom left the video playing for ten hours and watched it to the end.
BEFORE_CAP = [
    event("view", "w0", datetime(2026, 11, 20, 8, 0, tzinfo=UTC), actor_id="viewer-0", watch_ms=36_000_000, completed=True),
    *(event("view", f"w{n}", datetime(2026, 11, 20, 8, n, tzinfo=UTC), actor_id=f"viewer-{n}", watch_ms=10_000) for n in range(1, 5)),
]
# Then five more, one of whom watched to the end, and one of the first five again.
AFTER_CAP = [
    event("view", "x0", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), actor_id="viewer-5", watch_ms=30_000, completed=True),
    *(event("view", f"x{n}", datetime(2026, 11, 21, 8, n, tzinfo=UTC), actor_id=f"viewer-{n + 5}", watch_ms=10_000) for n in range(1, 5)),
    event("view", "x9", datetime(2026, 11, 21, 9, 0, tzinfo=UTC), actor_id="viewer-1", watch_ms=10_000, completed=True),
]


async def ingest_through_a_new_pool(url: str, events: list[dict[str, Any]]) -> None:
    """Events as ingest applies them, through connections prepared by the schema as it is now."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1, init=prepare_connection)
    try:
        await ingest(EventWriter(pool), events)
    finally:
        await pool.close()


# How ingest stored a batch before migration 0018. Today's store_batch.sql decides each share's
# anonymity from the consent audit as it stores it, which a store migrated only so far has not got.
STORE_BATCH_BEFORE_CONSENT = (
    """WITH fresh_ids AS (
           INSERT INTO event_ids (event_id, occurred_at)
           SELECT event_id, occurred_at FROM ingest_staging ORDER BY event_id
           ON CONFLICT DO NOTHING
           RETURNING event_id
       )
       INSERT INTO ingest_fresh
       SELECT s.* FROM ingest_staging s JOIN fresh_ids USING (event_id)""",
    """INSERT INTO events (event_id, type, occurred_at, video_id, creator_id, actor_id, channel,
                           region, age_band, watch_ms, completed, text, anonymous)
       SELECT event_id, type::event_type, occurred_at, video_id, creator_id, actor_id, channel::share_channel,
              region, age_band, watch_ms, completed, text, anonymous
       FROM ingest_fresh""",
)


async def ingest_before_consent(url: str, events: list[dict[str, Any]]) -> None:
    """Events as ingest applied them before migration 0018: stored, then one arrival, now."""
    batch = records(events)
    conn = await asyncpg.connect(url)
    try:
        await prepare_connection(conn)
        for moment in sorted({record[2] for record in batch}):
            await conn.execute("SELECT ensure_events_partition($1)", moment)
        async with conn.transaction():
            # The staging table of that schema: without the columns migration 0023 added.
            before_0023 = EVENT_COLUMNS.index("duration_ms")
            await conn.copy_records_to_table(
                "ingest_staging", records=[record[:before_0023] for record in batch], columns=EVENT_COLUMNS[:before_0023]
            )
            for statement in STORE_BATCH_BEFORE_CONSENT:
                await conn.execute(statement)
            await conn.execute("SELECT apply_arrival(now())")
    finally:
        await conn.close()


async def test_migrating_a_store_with_releases_caps_watch_time_from_the_next_release(
    empty_database: Callable[[], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Releases made before migration 0015 keep no watch time (their uncapped sum is dropped) and a
    completed cell of no people: neither an average watch time nor a completion rate is served
    from them. The ledger of viewers and the live state are built from the events applied so far,
    so the next release holds the capped sum and both completion cells, with their viewers."""
    url = await empty_database()
    monkeypatch.setattr(migrate_module, "migrations", lambda: [migration for migration in migrations() if migration.version < 15])
    await migrate(url, SECRET)
    monkeypatch.undo()
    await ingest_before_consent(url, BEFORE_CAP)

    assert await migrate(url, SECRET) == [name for name in ALL_MIGRATIONS if name >= "0015"]

    conn = await asyncpg.connect(url)
    try:
        await assert_live_state_matches_events(conn)
        await ingest_through_a_new_pool(url, AFTER_CAP)
        await assert_live_state_matches_events(conn)
        releases = await conn.fetch("SELECT seq, people, events, watch_capped_ms, watch_cap_ms FROM releases WHERE subject_id = 'v1' ORDER BY seq")
        assert [tuple(row) for row in releases] == [
            (1, 5, 5, None, None),
            # viewer-0's ten hours count three minutes; viewer-1 watched twice; viewers 2-4; viewer-5; viewers 6-9.
            (2, 10, 11, 180_000 + 20_000 + 3 * 10_000 + 30_000 + 4 * 10_000, 180_000),
        ]
        cells = await conn.fetch(
            "SELECT seq, value, events, people FROM release_cells WHERE subject_id = 'v1' AND dimension = 'w' ORDER BY seq, value"
        )
        assert [tuple(row) for row in cells] == [
            (1, "completed", 1, 0),  # as 0011 made it: a cell of no people, never served
            (2, "completed", 3, 3),
            (2, "not_completed", 8, 8),
        ]
    finally:
        await conn.close()
