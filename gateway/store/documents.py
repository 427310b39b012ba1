"""The GraphQL documents registered for each app (migration 0014). Registering and listing take
the owner connection (no pool role has a privilege on the table); a request reads one document,
by its app and hash, through `app_document()` with the reader pool."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.errors import NotFound
from gateway.store.failures import STORE_FAILURES, store_unavailable

__all__ = ["RegisteredDocument", "document_hash", "register_document", "registered_document", "registered_documents"]


@dataclass(frozen=True)
class RegisteredDocument:
    sha256: str
    operation_names: list[str]
    added_at: datetime
    added_by: str


def document_hash(document: str) -> str:
    """What names a document, in a client's `extensions.persistedQuery.sha256Hash` as in the
    store: the SHA-256 of its exact text (UTF-8), in lowercase hex."""
    return hashlib.sha256(document.encode()).hexdigest()


async def register_document(conn: asyncpg.Connection, app_id: str, document: str, operation_names: list[str]) -> tuple[str, bool]:
    """Registers `document` for `app_id`; returns its hash and whether it is new (registering it
    again changes nothing). NotFound for an unknown app."""
    sha256 = document_hash(document)
    try:
        added = await conn.fetchval(
            """INSERT INTO app_documents (app_id, sha256, document, operation_names) VALUES ($1, $2, $3, $4)
               ON CONFLICT (app_id, sha256) DO NOTHING RETURNING true""",
            app_id,
            sha256,
            document,
            operation_names,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no such app: {app_id}") from exc
    return sha256, bool(added)


async def registered_documents(conn: asyncpg.Connection, app_id: str) -> list[RegisteredDocument]:
    """The documents registered for `app_id`, oldest first. NotFound for an unknown app."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM apps WHERE app_id = $1)", app_id):
            raise NotFound(f"no such app: {app_id}")
        rows = await conn.fetch(
            """SELECT sha256, operation_names, added_at, added_by FROM app_documents
               WHERE app_id = $1 ORDER BY added_at, sha256""",
            app_id,
        )
    return [RegisteredDocument(row["sha256"], list(row["operation_names"]), row["added_at"], row["added_by"]) for row in rows]


async def registered_document(pool: asyncpg.Pool, app_id: str, sha256: str) -> str | None:
    """The text of the document `sha256` registered for `app_id`, or None; StoreUnavailable when
    the store cannot say."""
    try:
        document: str | None = await pool.fetchval("SELECT app_document($1, $2)", app_id, sha256)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return document
