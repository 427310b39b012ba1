"""Migrating is idempotent, safe to run concurrently, and refuses a migration edited after it was applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from gateway.store.migrate import ROLES, MigrationError, migrate, migrations

from conftest import SECRET, drop_database, fresh_database

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
