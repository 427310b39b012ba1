"""Schema migrations: `migrations/NNNN_name.sql`, applied in order, each once, under an advisory lock."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from gateway.clock import utc_now
from gateway.store.replay import replay_pending

__all__ = ["ROLES", "Migration", "MigrationError", "migrate", "migrations", "role_password"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_lock key held while migrating ("gateway" in ASCII).
LOCK_KEY = 0x67617465776179
ROLES = ("gateway_ingest", "gateway_reader", "gateway_private", "gateway_oauth")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        found.append(Migration(int(version), name, path.read_text()))
    return found


def role_password(secret: str, role: str) -> str:
    """The password a role logs in with where the server asks for one (derived from the secret)."""
    return hmac.new(secret.encode(), f"postgres role {role}".encode(), hashlib.sha256).hexdigest()


async def migrate(admin_url: str, secret: str) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to run twice and concurrently."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            applied = await _apply_pending(conn)
            await _rebuild_histories(conn)
            if urlsplit(admin_url).password:
                await _set_role_passwords(conn, secret)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    recorded = {row["version"]: row["checksum"] for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
    applied = []
    for migration in migrations():
        if migration.version in recorded:
            if recorded[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


async def _rebuild_histories(conn: asyncpg.Connection) -> None:
    """Replays the events a migration queued for the release history (0011: a store's events so
    far, in the order they were ingested), then forgets the request; resumes where a run stopped."""
    if await conn.fetchval("SELECT to_regclass('history_rebuild') IS NULL"):
        return  # a schema from before the release history
    if not await conn.fetchval("SELECT EXISTS (SELECT FROM history_rebuild)"):
        return
    made = await replay_pending(conn, utc_now)
    await conn.execute("DELETE FROM history_rebuild")
    log.info("built the release history of the events already stored: %d releases", made)


async def _set_role_passwords(conn: asyncpg.Connection, secret: str) -> None:
    for role in ROLES:
        statement = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, role_password(secret, role))
        await conn.execute(statement)
