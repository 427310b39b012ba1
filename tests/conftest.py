"""One Postgres for the whole run (embedded, or GATEWAY_DATABASE_URL's server); a fresh database per module."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.store.migrate import migrate
from gateway.store.pools import Store
from gateway.store.server import ensure_database, start_embedded, with_database

SECRET = "test-secret-not-for-production-0123456789"
TEMPLATE = "gateway_test_template"
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of a Postgres server the tests may create databases on."""
    configured = os.environ.get("GATEWAY_DATABASE_URL")
    if configured:
        yield configured
        return
    pgdata = Path(tempfile.mkdtemp(prefix="gateway-test-pg-"))
    # The embedded server runs as its own system user when we are root; it must reach the directory.
    pgdata.chmod(0o755)
    yield start_embedded(pgdata, cleanup_mode="delete")


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        statement = await conn.fetchval("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)", name)
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> str:
    """A migrated database that every test database is copied from."""
    await drop_database(server_url, TEMPLATE)
    url = await ensure_database(server_url, TEMPLATE)
    await migrate(url, SECRET)
    return url


async def fresh_database(server_url: str, template: str | None) -> tuple[str, str]:
    """Creates an empty (or copied) database; returns its name and URL."""
    name = f"gateway_test_{os.getpid()}_{next(_database_numbers)}"
    await drop_database(server_url, name)
    return name, await ensure_database(server_url, name, template=template)


@pytest.fixture(scope="module")
async def database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """A migrated database of this module's own."""
    name, url = await fresh_database(server_url, TEMPLATE)
    yield url
    await drop_database(server_url, name)


@pytest.fixture(scope="module")
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, SECRET)
    yield opened
    await opened.close()


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the module's database, for setting up and checking."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


__all__ = ["SECRET", "drop_database", "fresh_database", "with_database"]
