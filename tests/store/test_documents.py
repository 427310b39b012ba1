"""Documents registered for apps: named by the hash of their exact text, which the row itself
guarantees; read by a request only by app and hash, through app_document()."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.errors import NotFound
from gateway.store.apps import register_app
from gateway.store.documents import document_hash, register_document, registered_document, registered_documents
from gateway.store.pools import Store

DOCUMENT = "query Counts { video(id: \"v1\") { stats { views } } }\n"


async def test_a_document_is_registered_once_under_the_hash_of_its_text(admin: asyncpg.Connection) -> None:
    app_id = await register_app(admin, "Acme")

    first = await register_document(admin, app_id, DOCUMENT, ["Counts"])
    again = await register_document(admin, app_id, DOCUMENT, ["Counts"])

    assert first == (document_hash(DOCUMENT), True)
    assert again == (document_hash(DOCUMENT), False)
    assert [(listed.sha256, listed.operation_names) for listed in await registered_documents(admin, app_id)] == [(document_hash(DOCUMENT), ["Counts"])]


async def test_a_row_cannot_name_a_document_by_another_hash(admin: asyncpg.Connection) -> None:
    app_id = await register_app(admin, "Acme")

    with pytest.raises(asyncpg.CheckViolationError):
        await admin.execute(
            "INSERT INTO app_documents (app_id, sha256, document, operation_names) VALUES ($1, $2, $3, '{}')",
            app_id,
            document_hash("{ __typename }"),
            DOCUMENT,
        )


async def test_registering_for_an_unknown_app_is_not_found(admin: asyncpg.Connection) -> None:
    with pytest.raises(NotFound, match="no such app: app_nobody"):
        await register_document(admin, "app_nobody", DOCUMENT, ["Counts"])
    with pytest.raises(NotFound, match="no such app: app_nobody"):
        await registered_documents(admin, "app_nobody")


async def test_the_reader_reads_a_document_only_by_its_app_and_hash(store: Store, admin: asyncpg.Connection) -> None:
    owner, other = await register_app(admin, "Owner"), await register_app(admin, "Other")
    digest, _ = await register_document(admin, owner, DOCUMENT, ["Counts"])

    found = {
        "owner": await registered_document(store.reader, owner, digest),
        "other-app": await registered_document(store.reader, other, digest),
        "other-hash": await registered_document(store.reader, owner, document_hash("{ __typename }")),
    }

    assert found == {"owner": DOCUMENT, "other-app": None, "other-hash": None}
